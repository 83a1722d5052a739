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
  /** Slots this worker may be using: its held figure, or, for a lapsed lease, its calls in flight. */
  held: number;
}

/** What a worker publishes about one scope at each rebalance. */
export interface LeasePublication {
  demand: number;
  held: number;
  inFlight: number;
  /** Epoch ms by which every call now in flight has ended (its start plus the upstream timeout). */
  callsUntil: number;
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
  put(scope: string, workerId: string, lease: LeasePublication, ttlMs: number): Promise<void>;
}

/** The shared state behind the limits; Postgres in production (PgLimitStore), a fake in unit tests. */
export interface LimitStore {
  leaseTransaction<T>(fn: (tx: LeaseTransaction) => Promise<T>): Promise<T>;
  releaseLeases(workerId: string): Promise<void>;
  ensureBucket(scope: string, requests: number, tokens: number): Promise<void>;
  take(scope: string, t: TakeRequest): Promise<TakeResult>;
}

/**
 * How long a worker with a lapsed lease and no Postgres session is still believed alive, so
 * that its calls in flight keep counting through a Postgres restart (every session drops;
 * live workers reconnect within seconds) but a crashed worker's share comes back.
 */
const LAPSED_GRACE = "interval '30 seconds'";

export class PgLimitStore implements LimitStore {
  /** `appName`: this process's Postgres application_name, which tells others it is alive. */
  constructor(
    private readonly db: DataSource,
    private readonly appName: string | null = null,
  ) {}

  async leaseTransaction<T>(fn: (tx: LeaseTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction(async (em: EntityManager) =>
      fn({
        others: async (scope, workerId) => {
          await em.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LEASE_LOCK_CLASS, scope]);
          // Live leases count what they hold. A lapsed lease (a worker that could not renew:
          // a database blip, a pause) still counts its calls in flight until they must have
          // ended, while that worker is alive: it has a session, or lapsed only just now.
          const rows: { worker_id: string; demand: number; held: number }[] = await em.query(
            `WITH swept AS (
               DELETE FROM upstream_concurrency_leases
               WHERE scope = $1 AND expires_at < now() - interval '1 minute'
                 AND (calls_until IS NULL OR calls_until < now())
             )
             SELECT worker_id,
                    CASE WHEN expires_at > now() THEN demand ELSE 0 END AS demand,
                    CASE WHEN expires_at > now() THEN held ELSE in_flight END AS held
               FROM upstream_concurrency_leases l
              WHERE scope = $1 AND worker_id <> $2
                AND (expires_at > now()
                     OR (in_flight > 0 AND calls_until > now()
                         AND (expires_at > now() - ${LAPSED_GRACE}
                              OR EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = l.app_name))))`,
            [scope, workerId],
          );
          return rows.map((r) => ({ workerId: r.worker_id, demand: r.demand, held: r.held }));
        },
        put: async (scope, workerId, lease, ttlMs) => {
          await em.query(
            `INSERT INTO upstream_concurrency_leases
               (scope, worker_id, demand, held, in_flight, calls_until, app_name, expires_at)
             VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0), $7, now() + $8 * interval '1 millisecond')
             ON CONFLICT (scope, worker_id) DO UPDATE
               SET demand = EXCLUDED.demand, held = EXCLUDED.held, in_flight = EXCLUDED.in_flight,
                   calls_until = EXCLUDED.calls_until, app_name = EXCLUDED.app_name,
                   expires_at = EXCLUDED.expires_at`,
            [
              scope,
              workerId,
              lease.demand,
              lease.held,
              lease.inFlight,
              lease.callsUntil,
              this.appName,
              ttlMs,
            ],
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
