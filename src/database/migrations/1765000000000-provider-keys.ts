import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A tenant's own keys for upstreams (src/tenants/provider-keys.ts), sealed with
 * src/common/secret-box.ts, never in the clear:
 * - tenant_provider_keys: a key a tenant registered for an upstream (`barge tenants set-key`),
 *   used for every request of its batches that goes to that upstream, until deleted.
 * - batch_provider_keys: a key sent on a batch's create (`x-barge-provider-key`), for the
 *   upstream the batch is pinned to. Held only while the batch runs: a trigger deletes it in
 *   the very transaction that ends the batch, whoever ends it (finalize, the reconciler, a
 *   failed validation), and it goes with its batch row.
 */
export class ProviderKeys1765000000000 implements MigrationInterface {
  name = 'ProviderKeys1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenant_provider_keys (
        tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        upstream text NOT NULL,
        key_sealed text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, upstream)
      )`);
    await q.query(`
      CREATE TABLE batch_provider_keys (
        batch_id text PRIMARY KEY REFERENCES batches(id) ON DELETE CASCADE,
        upstream text NOT NULL,
        key_sealed text NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE FUNCTION barge_batch_ended_drop_provider_key() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status IN ('completed', 'failed', 'expired', 'cancelled') THEN
          DELETE FROM batch_provider_keys WHERE batch_id = NEW.id;
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER batches_ended_drop_provider_key AFTER UPDATE OF status ON batches
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION barge_batch_ended_drop_provider_key()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS batches_ended_drop_provider_key ON batches`);
    await q.query(`DROP FUNCTION IF EXISTS barge_batch_ended_drop_provider_key()`);
    await q.query(`DROP TABLE IF EXISTS batch_provider_keys`);
    await q.query(`DROP TABLE IF EXISTS tenant_provider_keys`);
  }
}
