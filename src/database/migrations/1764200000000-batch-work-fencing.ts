import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the fault work needs in the batch working tables and the concurrency leases:
 * - batch_chunks.claim_token / claim_expires_at: one attempt at a time sends a chunk's
 *   requests (an attempt of the next workflow run, or one started after a heartbeat timeout,
 *   waits until the previous attempt has let go or its claim has lapsed), so a chunk's
 *   requests are not sent twice while an earlier attempt is still alive.
 * - request_results.bytes: finalize pages by bytes, not rows, so 1 MB answers cannot make
 *   pages of gigabytes; custom_id: the results endpoint filters on it.
 * - upstream_concurrency_leases.in_flight / calls_until / app_name: a worker whose lease
 *   lapsed keeps its calls in flight counted by the others until those calls must have ended.
 */
export class BatchWorkFencing1764200000000 implements MigrationInterface {
  name = 'BatchWorkFencing1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE batch_chunks ADD COLUMN claim_token text, ADD COLUMN claim_expires_at timestamptz`,
    );
    await q.query(
      `ALTER TABLE request_results ADD COLUMN bytes integer NOT NULL DEFAULT 0, ADD COLUMN custom_id text`,
    );
    await q.query(`
      ALTER TABLE upstream_concurrency_leases
        ADD COLUMN in_flight integer NOT NULL DEFAULT 0,
        ADD COLUMN calls_until timestamptz,
        ADD COLUMN app_name text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE upstream_concurrency_leases DROP COLUMN IF EXISTS in_flight, DROP COLUMN IF EXISTS calls_until, DROP COLUMN IF EXISTS app_name`,
    );
    await q.query(`ALTER TABLE request_results DROP COLUMN IF EXISTS bytes, DROP COLUMN IF EXISTS custom_id`);
    await q.query(
      `ALTER TABLE batch_chunks DROP COLUMN IF EXISTS claim_token, DROP COLUMN IF EXISTS claim_expires_at`,
    );
  }
}
