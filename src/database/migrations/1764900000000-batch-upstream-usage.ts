import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * batch_upstream_usage: each batch's outcomes and tokens per upstream that answered, moved in
 * the statement that records the outcomes (src/batches/store/work.repository.ts), so a
 * batch's cost is its tokens at the price of the upstream that actually answered them (a
 * batch can be served by several: fallbacks, cheapest routing). Batches recorded before this
 * table have no rows: their tokens count as answered by an unknown upstream.
 */
export class BatchUpstreamUsage1764900000000 implements MigrationInterface {
  name = 'BatchUpstreamUsage1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE batch_upstream_usage (
        batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        upstream text NOT NULL,
        request_completed integer NOT NULL DEFAULT 0,
        request_failed integer NOT NULL DEFAULT 0,
        input_tokens bigint NOT NULL DEFAULT 0,
        cached_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        reasoning_tokens bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (batch_id, upstream)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS batch_upstream_usage`);
  }
}
