import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Results stay readable after a batch ends (GET /v1/batches/{id}/results) and its failed
 * requests can be retried (POST /v1/batches/{id}/retry):
 * - request_results rows are no longer deleted at finalize but slimmed: `output` (the whole
 *   line) is dropped once the output and error files hold it, and `file_offset` says where the
 *   line starts in its file; `outcome` names what happened (completed, failed, expired,
 *   cancelled). See src/batches/store/result-index.ts, and README (Results while running) for
 *   what this costs.
 * - batch_results marks a batch whose rows were slimmed (`indexed`: the offsets match the
 *   committed files; false: they did not, and the rows kept their lines), so the sweep of
 *   leftovers and the results reader need not look at the rows.
 */
export class BatchResults1764310000000 implements MigrationInterface {
  name = 'BatchResults1764310000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE request_results
        ALTER COLUMN output DROP NOT NULL,
        ADD COLUMN file_offset bigint,
        ADD COLUMN outcome text CHECK (outcome IN ('completed', 'failed', 'expired', 'cancelled'))`);
    await q.query(`
      CREATE TABLE batch_results (
        batch_id text PRIMARY KEY REFERENCES batches(id) ON DELETE CASCADE,
        indexed boolean NOT NULL,
        compacted_at timestamptz NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS batch_results`);
    await q.query(`DELETE FROM request_results WHERE output IS NULL`);
    await q.query(`
      ALTER TABLE request_results DROP COLUMN IF EXISTS file_offset, DROP COLUMN IF EXISTS outcome,
        ALTER COLUMN output SET NOT NULL`);
  }
}
