import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhooks (src/webhooks/):
 * - webhook_endpoints: a tenant's receivers. The signing secret is stored sealed
 *   (src/common/secret-box.ts), never in the clear; a deleted endpoint loses its secrets and
 *   keeps its row for the delivery history.
 * - webhook_events: one row per batch that ended while its tenant had an endpoint for the
 *   event, written by a trigger on batches in the very transaction that ends the batch, so
 *   every terminal transition (finalize, the reconciler, a failed validation) emits exactly
 *   one event (the unique index on batch_id) and no ending can be missed. It is the outbox a
 *   worker relays to Temporal (workflow id = event id; workflow_started_at once started).
 * - webhook_attempts: every HTTP attempt, for GET /v1/webhook_endpoints/{id}/deliveries.
 */
export class Webhooks1764300000000 implements MigrationInterface {
  name = 'Webhooks1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE webhook_endpoints (
        id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id),
        url text NOT NULL,
        name text,
        event_types text[] NOT NULL,
        payload text NOT NULL DEFAULT 'thin' CHECK (payload IN ('thin', 'full')),
        status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
        disabled_reason text,
        disabled_at timestamptz,
        secret_sealed text,
        secret_hint text NOT NULL,
        previous_secret_sealed text,
        previous_secret_expires_at timestamptz,
        last_success_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        deleted_at timestamptz
      )`);
    await q.query(
      `CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL`,
    );
    await q.query(`
      CREATE TABLE webhook_events (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        type text NOT NULL,
        batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        data jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        workflow_started_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX webhook_events_batch ON webhook_events (batch_id)`);
    await q.query(
      `CREATE INDEX webhook_events_unstarted ON webhook_events (created_at) WHERE workflow_started_at IS NULL`,
    );
    await q.query(`CREATE INDEX webhook_events_created ON webhook_events (created_at)`);
    await q.query(`
      CREATE TABLE webhook_attempts (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        endpoint_id text NOT NULL REFERENCES webhook_endpoints(id),
        event_id text NOT NULL,
        event_type text NOT NULL,
        attempt integer NOT NULL,
        status text NOT NULL CHECK (status IN ('succeeded', 'failed', 'skipped')),
        response_status integer,
        response_body text,
        error text,
        duration_ms integer,
        next_attempt_at timestamptz,
        test boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, created_at DESC, id DESC)`,
    );
    await q.query(`CREATE INDEX webhook_attempts_created ON webhook_attempts (created_at)`);
    // The event of a batch's end. The data snapshot is the richer body's `data` (opt-in per
    // endpoint); the thin body carries data.id only, as OpenAI's does.
    await q.query(`
      CREATE FUNCTION barge_batch_ended_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
           AND NEW.status IN ('completed', 'failed', 'expired', 'cancelled')
           AND EXISTS (SELECT 1 FROM webhook_endpoints e
                        WHERE e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL AND e.status = 'enabled'
                          AND ('batch.' || NEW.status) = ANY (e.event_types)) THEN
          INSERT INTO webhook_events (id, tenant_id, type, batch_id, data, created_at)
          VALUES (
            'evt_' || replace(gen_random_uuid()::text, '-', ''),
            NEW.tenant_id,
            'batch.' || NEW.status,
            NEW.id,
            jsonb_build_object(
              'id', NEW.id, 'object', 'batch', 'status', NEW.status, 'endpoint', NEW.endpoint,
              'model', NEW.model, 'input_file_id', NEW.input_file_id,
              'output_file_id', NEW.output_file_id, 'error_file_id', NEW.error_file_id,
              'request_counts', jsonb_build_object(
                'total', NEW.request_total, 'completed', NEW.request_completed, 'failed', NEW.request_failed),
              'metadata', NEW.metadata),
            clock_timestamp())
          ON CONFLICT (batch_id) DO NOTHING;
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER batches_ended_webhook_event AFTER UPDATE OF status ON batches
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION barge_batch_ended_webhook_event()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS batches_ended_webhook_event ON batches`);
    await q.query(`DROP FUNCTION IF EXISTS barge_batch_ended_webhook_event()`);
    for (const table of ['webhook_attempts', 'webhook_events', 'webhook_endpoints']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
