import { Column, Entity, PrimaryColumn } from 'typeorm';

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
export const TERMINAL_STATUSES: readonly BatchStatus[] = ['failed', 'completed', 'expired', 'cancelled'];
/** Batches that have not ended: they count as active (quotas) and may still read their input. */
export const NON_TERMINAL_STATUSES: readonly BatchStatus[] = [
  'validating',
  'in_progress',
  'finalizing',
  'cancelling',
];

export interface BatchErrorItem {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

const bigint = { to: (v: number) => v, from: (v: string | null) => (v === null ? null : Number(v)) };

/** One batch. Counters are maintained by the dispatch activities and read live by the API. */
@Entity('batches')
export class BatchRecord {
  @PrimaryColumn('text')
  id!: string;

  @Column('text', { name: 'tenant_id' })
  tenantId!: string;

  @Column('text')
  endpoint!: string;

  @Column('text', { nullable: true })
  model!: string | null;

  @Column('text', { name: 'input_file_id' })
  inputFileId!: string;

  @Column('text', { name: 'completion_window' })
  completionWindow!: string;

  @Column('text')
  status!: BatchStatus;

  /** Upstream pinned at create time (provider header or metadata), if any. */
  @Column('text', { nullable: true })
  provider!: string | null;

  /** The client's Idempotency-Key header on create, if it sent one. */
  @Column('text', { name: 'idempotency_key', nullable: true })
  idempotencyKey!: string | null;

  /** sha256 of the create request the key was first used with (src/batches/api/idempotency.ts). */
  @Column('text', { name: 'idempotency_fingerprint', nullable: true })
  idempotencyFingerprint!: string | null;

  @Column('text', { name: 'output_file_id', nullable: true })
  outputFileId!: string | null;

  @Column('text', { name: 'error_file_id', nullable: true })
  errorFileId!: string | null;

  @Column('jsonb', { nullable: true })
  errors!: { data: BatchErrorItem[] } | null;

  @Column('jsonb', { nullable: true })
  metadata!: Record<string, string> | null;

  @Column('integer', { name: 'output_expires_after_seconds', nullable: true })
  outputExpiresAfterSeconds!: number | null;

  @Column('integer', { name: 'request_total', default: 0 })
  requestTotal!: number;

  @Column('integer', { name: 'request_completed', default: 0 })
  requestCompleted!: number;

  @Column('integer', { name: 'request_failed', default: 0 })
  requestFailed!: number;

  @Column('bigint', { name: 'input_tokens', default: 0, transformer: bigint })
  inputTokens!: number;

  @Column('bigint', { name: 'cached_tokens', default: 0, transformer: bigint })
  cachedTokens!: number;

  @Column('bigint', { name: 'output_tokens', default: 0, transformer: bigint })
  outputTokens!: number;

  @Column('bigint', { name: 'reasoning_tokens', default: 0, transformer: bigint })
  reasoningTokens!: number;

  /** Token estimate of the input, set when validation admitted it under the enqueued-token quota. */
  @Column('bigint', { name: 'estimated_tokens', nullable: true, transformer: bigint })
  estimatedTokens!: number | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt!: Date;

  @Column('timestamptz', { name: 'in_progress_at', nullable: true })
  inProgressAt!: Date | null;

  @Column('timestamptz', { name: 'finalizing_at', nullable: true })
  finalizingAt!: Date | null;

  @Column('timestamptz', { name: 'completed_at', nullable: true })
  completedAt!: Date | null;

  @Column('timestamptz', { name: 'failed_at', nullable: true })
  failedAt!: Date | null;

  @Column('timestamptz', { name: 'expired_at', nullable: true })
  expiredAt!: Date | null;

  @Column('timestamptz', { name: 'cancelling_at', nullable: true })
  cancellingAt!: Date | null;

  @Column('timestamptz', { name: 'cancelled_at', nullable: true })
  cancelledAt!: Date | null;
}
