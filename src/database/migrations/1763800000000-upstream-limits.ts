import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Shared state of the upstream limits (src/upstreams/limiter.ts): a token bucket per limited
 * scope (an upstream, or one model on it) and each worker's concurrency lease per scope.
 * UNLOGGED: seconds-lived coordination state, not worth the WAL; after a crash the buckets
 * restart full and the workers re-register within one lease refresh.
 */
export class UpstreamLimits1763800000000 implements MigrationInterface {
  name = 'UpstreamLimits1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE upstream_rate_buckets (
        scope text PRIMARY KEY,
        requests double precision NOT NULL,
        tokens double precision NOT NULL,
        refreshed_at timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE UNLOGGED TABLE upstream_concurrency_leases (
        scope text NOT NULL,
        worker_id text NOT NULL,
        demand integer NOT NULL,
        held integer NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (scope, worker_id)
      )`);
    await q.query(
      `CREATE INDEX upstream_concurrency_leases_worker ON upstream_concurrency_leases (worker_id)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS upstream_concurrency_leases`);
    await q.query(`DROP TABLE IF EXISTS upstream_rate_buckets`);
  }
}
