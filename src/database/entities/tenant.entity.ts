import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

const bigint = { to: (v: number | null) => v, from: (v: string | null) => (v === null ? null : Number(v)) };

@Entity('tenants')
export class Tenant {
  @PrimaryColumn('text')
  id!: string;

  @Column('text', { unique: true })
  name!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** Quota overrides (src/tenants/quotas.ts): null, the configured default; -1, no limit. */
  @Column('bigint', { name: 'max_active_batches', nullable: true, transformer: bigint })
  maxActiveBatches!: number | null;

  @Column('bigint', { name: 'max_storage_bytes', nullable: true, transformer: bigint })
  maxStorageBytes!: number | null;

  @Column('bigint', { name: 'max_enqueued_tokens', nullable: true, transformer: bigint })
  maxEnqueuedTokens!: number | null;

  /** Upstreams the tenant may pin (x-barge-provider, metadata.barge_provider); null: every one. */
  @Column('text', { name: 'allowed_upstreams', array: true, nullable: true })
  allowedUpstreams!: string[] | null;
}
