import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Purposes a client may upload; `batch_output` files are written by the system only. */
export const UPLOADABLE_PURPOSES = [
  'batch',
  'user_data',
  'fine-tune',
  'assistants',
  'vision',
  'evals',
] as const;
export type UploadablePurpose = (typeof UPLOADABLE_PURPOSES)[number];
export const FILE_PURPOSES = [...UPLOADABLE_PURPOSES, 'batch_output'] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];

/** A stored file. The bytes live in object storage under `objectKey`. */
@Entity('files')
export class FileRecord {
  @PrimaryColumn('text')
  id!: string;

  @Column('text', { name: 'tenant_id' })
  tenantId!: string;

  @Column('text')
  filename!: string;

  @Column('text')
  purpose!: FilePurpose;

  @Column('bigint', { transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  bytes!: number;

  @Column('text', { name: 'object_key' })
  objectKey!: string;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'expires_at', nullable: true })
  expiresAt!: Date | null;

  /** Set when the API deleted it; the object may outlive the row while a batch still reads it. */
  @Column('timestamptz', { name: 'deleted_at', nullable: true })
  deletedAt!: Date | null;

  /** Set once the stored object has been removed (by a delete or by the purge job). */
  @Column('timestamptz', { name: 'purged_at', nullable: true })
  purgedAt!: Date | null;
}
