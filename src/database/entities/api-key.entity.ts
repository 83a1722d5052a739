import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** An API key. Only a SHA-256 hash of the secret is stored; `prefix` lets people tell keys apart. */
@Entity('api_keys')
export class ApiKey {
  @PrimaryColumn('text')
  id!: string;

  @Column('text', { name: 'tenant_id' })
  tenantId!: string;

  @Column('text', { name: 'key_hash', unique: true })
  keyHash!: string;

  @Column('text')
  prefix!: string;

  @Column('text', { nullable: true })
  name!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  /** `tenant`, or `admin`: an operator's key reading every tenant's batches and usage. */
  @Column('text', { default: 'tenant' })
  role!: 'tenant' | 'admin';
}
