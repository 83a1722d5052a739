import type { DataSource, EntityManager } from 'typeorm';

/**
 * The Postgres side of the shared upstream limits (design in limiter.ts): every SQL
 * statement the limiter runs is here. Both tables are UNLOGGED: their rows are seconds-lived
 * coordination state, so skipping the WAL is worth losing them in a crash (buckets restart
 * full, workers re-register within one lease refresh).
 */

export interface LeaseRow {
  workerId: string;
  demand: number;
  held: number;
}

/** Rate-limit parameters of one take; a dimension with rate 0 is unlimited and not touched. */
export interface TakeRequest {
  requests: { capacity: number; perSecond: number; want: number };
  tokens: { capacity: number; perSecond: number; want: number; need: number; adjust: number };
}

export interface TakeResult {
  /** Permits granted: both dimensions or neither. */
  requests: number;
  tokens: number;
  /** Bucket levels after the take, to work out when to ask again. */
  requestsLeft: number;
  tokensLeft: number;
}

/** Key space of pg_advisory_xact_lock(int, int) used for lease scopes ("ba"). */
const LEASE_LOCK_CLASS = 0x6261;

export interface LeaseTransaction {
  /** Locks `scope` for this transaction and returns the other workers' live leases on it. */
  others(scope: string, workerId: string): Promise<LeaseRow[]>;
  put(scope: string, workerId: string, lease: { demand: number; held: number }, ttlMs: number): Promise<void>;
}

export class LimitStore {
  constructor(private readonly db: DataSource) {}

  async leaseTransaction<T>(fn: (tx: LeaseTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction(async (em: EntityManager) =>
      fn({
        others: async (scope, workerId) => {
          await em.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LEASE_LOCK_CLASS, scope]);
          const rows: { worker_id: string; demand: number; held: number }[] = await em.query(
            `WITH swept AS (
               DELETE FROM upstream_concurrency_leases
               WHERE scope = $1 AND expires_at < now() - interval '1 minute'
             )
             SELECT worker_id, demand, held FROM upstream_concurrency_leases
             WHERE scope = $1 AND worker_id <> $2 AND expires_at > now()`,
            [scope, workerId],
          );
          return rows.map((r) => ({ workerId: r.worker_id, demand: r.demand, held: r.held }));
        },
        put: async (scope, workerId, lease, ttlMs) => {
          await em.query(
            `INSERT INTO upstream_concurrency_leases (scope, worker_id, demand, held, expires_at)
             VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
             ON CONFLICT (scope, worker_id) DO UPDATE
               SET demand = EXCLUDED.demand, held = EXCLUDED.held, expires_at = EXCLUDED.expires_at`,
            [scope, workerId, lease.demand, lease.held, ttlMs],
          );
        },
      }),
    );
  }

  /** Gives back every lease of a worker that is shutting down. */
  async releaseLeases(workerId: string): Promise<void> {
    await this.db.query('DELETE FROM upstream_concurrency_leases WHERE worker_id = $1', [workerId]);
  }

  /** Creates the bucket of a scope, full, unless another worker already did. */
  async ensureBucket(scope: string, requests: number, tokens: number): Promise<void> {
    await this.db.query(
      `INSERT INTO upstream_rate_buckets (scope, requests, tokens, refreshed_at)
       VALUES ($1, $2, $3, clock_timestamp()) ON CONFLICT (scope) DO NOTHING`,
      [scope, requests, tokens],
    );
  }

  /**
   * Refills the bucket for the time since its last take, applies usage corrections, and takes
   * up to `want` permits in one atomic statement (the row lock serializes workers). Grants
   * only when one request fits in every limited dimension; a request larger than the token
   * capacity is let through from a full bucket and leaves it in debt.
   */
  async take(scope: string, t: TakeRequest): Promise<TakeResult> {
    // For UPDATE ... RETURNING, TypeORM's postgres driver answers [rows, affected count].
    const [rows] = (await this.db.query(
      `WITH locked AS (
           SELECT scope, requests, tokens,
                  greatest(0, extract(epoch FROM clock_timestamp() - refreshed_at))::float8 AS secs
           FROM upstream_rate_buckets WHERE scope = $1 FOR UPDATE
         ), level AS (
           SELECT scope,
                  least($2::float8, requests + $3::float8 * secs) AS r,
                  least($5::float8, tokens + $6::float8 * secs + $9::float8) AS t
           FROM locked
         ), grant_ AS (
           SELECT scope, r, t,
                  ($4::float8 = 0 OR r >= 1) AND ($8::float8 = 0 OR t >= least($7::float8, $5::float8)) AS ok
           FROM level
         ), amounts AS (
           SELECT scope, r, t,
                  CASE WHEN ok THEN least($4::float8, floor(greatest(r, 0))) ELSE 0 END AS gr,
                  CASE WHEN ok AND $8::float8 > 0 THEN greatest($7::float8, least($8::float8, t)) ELSE 0 END AS gt
           FROM grant_
         )
         UPDATE upstream_rate_buckets b
         SET requests = a.r - a.gr, tokens = a.t - a.gt, refreshed_at = clock_timestamp()
         FROM amounts a WHERE b.scope = a.scope
         RETURNING a.gr AS requests, a.gt AS tokens, b.requests AS requests_left, b.tokens AS tokens_left`,
      [
        scope,
        t.requests.capacity,
        t.requests.perSecond,
        t.requests.want,
        t.tokens.capacity,
        t.tokens.perSecond,
        t.tokens.need,
        t.tokens.want,
        t.tokens.adjust,
      ],
    )) as [{ requests: number; tokens: number; requests_left: number; tokens_left: number }[], number];
    const row = rows[0];
    if (!row) throw new Error(`rate bucket ${scope} does not exist`);
    return {
      requests: Number(row.requests),
      tokens: Number(row.tokens),
      requestsLeft: Number(row.requests_left),
      tokensLeft: Number(row.tokens_left),
    };
  }
}
