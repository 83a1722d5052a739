import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenant quotas (src/tenants/):
 * - tenants.max_*: the operator's per-tenant overrides of the configured defaults (`barge
 *   tenants set`); NULL: the default applies, -1: no limit.
 * - batches.estimated_tokens: the token estimate of a batch's input, set when validation admits
 *   it under the enqueued-token quota; NULL until then (and for batches validated before).
 * - an index for counting a tenant's active batches, which every create does.
 */
export class TenantQuotas1764600000000 implements MigrationInterface {
  name = 'TenantQuotas1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenants
        ADD COLUMN max_active_batches bigint CHECK (max_active_batches >= -1),
        ADD COLUMN max_storage_bytes bigint CHECK (max_storage_bytes >= -1),
        ADD COLUMN max_enqueued_tokens bigint CHECK (max_enqueued_tokens >= -1)`);
    await q.query(`ALTER TABLE batches ADD COLUMN estimated_tokens bigint`);
    await q.query(
      `CREATE INDEX batches_tenant_active ON batches (tenant_id, model)
        WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS batches_tenant_active`);
    await q.query(`ALTER TABLE batches DROP COLUMN IF EXISTS estimated_tokens`);
    await q.query(
      `ALTER TABLE tenants DROP COLUMN IF EXISTS max_active_batches, DROP COLUMN IF EXISTS max_storage_bytes,
        DROP COLUMN IF EXISTS max_enqueued_tokens`,
    );
  }
}
