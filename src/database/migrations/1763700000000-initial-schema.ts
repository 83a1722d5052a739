import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1763700000000 implements MigrationInterface {
  name = 'InitialSchema1763700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id),
        key_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        name text,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz
      )`);
    await q.query(`CREATE INDEX api_keys_tenant ON api_keys (tenant_id)`);
    await q.query(`
      CREATE TABLE files (
        id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id),
        filename text NOT NULL,
        purpose text NOT NULL,
        bytes bigint NOT NULL,
        object_key text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz,
        deleted_at timestamptz
      )`);
    // Listing pages newest-first per tenant; the id breaks ties between equal timestamps.
    await q.query(
      `CREATE INDEX files_tenant_created ON files (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL`,
    );
    await q.query(
      `CREATE INDEX files_expires ON files (expires_at) WHERE deleted_at IS NULL AND expires_at IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE batches (
        id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id),
        endpoint text NOT NULL,
        model text,
        input_file_id text NOT NULL REFERENCES files(id),
        completion_window text NOT NULL,
        status text NOT NULL CHECK (status IN
          ('validating','failed','in_progress','finalizing','completed','expired','cancelling','cancelled')),
        provider text,
        idempotency_key text,
        output_file_id text REFERENCES files(id),
        error_file_id text REFERENCES files(id),
        errors jsonb,
        metadata jsonb,
        output_expires_after_seconds integer,
        request_total integer NOT NULL DEFAULT 0,
        request_completed integer NOT NULL DEFAULT 0,
        request_failed integer NOT NULL DEFAULT 0,
        input_tokens bigint NOT NULL DEFAULT 0,
        cached_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        reasoning_tokens bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        in_progress_at timestamptz,
        finalizing_at timestamptz,
        completed_at timestamptz,
        failed_at timestamptz,
        expired_at timestamptz,
        cancelling_at timestamptz,
        cancelled_at timestamptz
      )`);
    await q.query(`CREATE INDEX batches_tenant_created ON batches (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX batches_input_file ON batches (input_file_id)`);
    // A create retried with the same Idempotency-Key returns the first batch instead of a second.
    await q.query(
      `CREATE UNIQUE INDEX batches_idempotency ON batches (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
    );
    // Where each chunk of a batch's input file lies, so a chunk activity reads only its bytes.
    // line_count spans physical lines (blank ones included); request_count counts requests.
    await q.query(`
      CREATE TABLE batch_chunks (
        batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        idx integer NOT NULL,
        first_line integer NOT NULL,
        line_count integer NOT NULL,
        request_count integer NOT NULL,
        byte_start bigint NOT NULL,
        byte_end bigint NOT NULL,
        PRIMARY KEY (batch_id, idx)
      )`);
    // Each request's final outcome, written exactly once (the primary key makes replays no-ops).
    // `output` is the finished output-file line, so finalizing is a streamed concatenation.
    await q.query(`
      CREATE TABLE request_results (
        batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        line integer NOT NULL,
        ok boolean NOT NULL,
        output text NOT NULL,
        PRIMARY KEY (batch_id, line)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['request_results', 'batch_chunks', 'batches', 'files', 'api_keys', 'tenants']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
