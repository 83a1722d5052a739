/**
 * Upstream limits: max concurrency, requests per minute and tokens per minute, per upstream
 * and per model where configured; shared fairly between tenants and batches, and holding
 * across every worker process.
 *
 * Within a process, requests wait in one FairQueue per upstream (round-robin over tenants,
 * then over a tenant's batches, FIFO within a batch) and start when every scope they belong
 * to (the upstream, plus their model if it has limits of its own) has a free slot and rate
 * permits in stock. Nothing here touches the database per request.
 *
 * Across processes the limits go through Postgres, which every worker already has:
 *
 * - Concurrency: demand-weighted leases (lease-keeper.ts). Each worker keeps one row per
 *   scope in upstream_concurrency_leases {demand, held, expires_at} and rebalances about once
 *   a second (sooner when starved or when it has slots to hand back), under a per-scope
 *   advisory lock: it reads the other workers' live rows, computes the max-min fair split of
 *   maxConcurrency over everyone's demand, grants itself min(its share, maxConcurrency minus
 *   what the others hold) and publishes held = max(grant, requests in flight). A worker never
 *   starts a request beyond its grant and lowers the grant before publishing, so the sum of
 *   held never exceeds the limit, even while shares move.
 *   Trade-offs: a worker whose share shrinks finishes its in-flight requests first, so a
 *   newcomer waits up to one request's latency plus a refresh for its share; a crashed
 *   worker's share stays blocked until its lease expires (10 s); a worker that cannot reach
 *   the database stops starting requests when its lease runs out instead of guessing.
 *   Rejected: a database lease per request (thousands of round trips per second at full
 *   speed) and a static split over live workers (idle workers sit on their share, and
 *   membership changes overshoot while the old shares drain).
 * - Rates: a token bucket per scope in upstream_rate_buckets, refilled continuously at
 *   limit/60 per second with a burst of one second's worth, refilled-and-taken atomically by
 *   one UPDATE (limit-store.ts). Workers take permits in blocks of at most 0.2 s of the rate
 *   and only for requests that have a slot to start in (rate-bucket.ts), so a busy scope costs
 *   about five round trips per second per worker and unused permits cannot pile up. Tokens are
 *   estimated before sending (token-estimate.ts); the difference from the reported usage goes
 *   back to (or is charged to) the shared bucket with the next take.
 *   Bound: in any t seconds, at most (1 + t) x limit / 60 requests (tokens: the same, give or
 *   take estimation errors, which later requests pay back).
 *
 * Fairness across processes follows demand, not tenants: each worker gets a share of the
 * limits by its demand and round-robins its tenants within it. A tenant whose batches run on
 * many workers therefore gets more than one whose batch runs on one; exact global tenant
 * fairness would need the queue itself in the database.
 *
 * Adaptive pacing (adaptive-concurrency.ts: overload rate above its noise floor, and latency)
 * narrows this process's upstream
 * slots below its grant; the narrowed figure is what it reports as demand, so the shared
 * budget goes to the workers that can use it.
 */
import { Watchers } from '../common/watchers';
import { abortError, onAbort } from './abort';
import { AdaptiveConcurrency, type PacingOptions } from './adaptive-concurrency';
import type { Clock } from './clock';
import { FairQueue } from './fair-queue';
import type { LeasedScope, LeaseKeeper } from './lease-keeper';
import type { LimitStore } from './limit-store';
import { RateBucket, type RateLimits } from './rate-bucket';
import type { Upstream } from './registry';
import { isOverload } from './retry-policy';

interface ScopeLimits extends RateLimits {
  maxConcurrency?: number;
}

export interface LimiterDeps {
  store: LimitStore;
  keeper: LeaseKeeper;
  clock: Clock;
  onError: (what: string, error: unknown) => void;
  /** Overrides of the pacing parameters (tests). */
  pacing?: Omit<PacingOptions, 'max'>;
}

/** One limited scope (an upstream, or one model on it) in this process. */
class LimitScope implements LeasedScope {
  inFlight = 0;
  /** Queued requests that belong to this scope. */
  waiting = 0;
  readonly maxConcurrency: number;
  readonly bucket: RateBucket | null;
  private granted = 0;
  private held = 0;
  private validUntil = 0;
  private active = false;

  constructor(
    readonly key: string,
    limits: ScopeLimits,
    private readonly callTimeoutMs: number,
    private readonly pacing: AdaptiveConcurrency | null,
    private readonly deps: LimiterDeps,
    private readonly onChange: () => void,
  ) {
    this.maxConcurrency = limits.maxConcurrency ?? Number.POSITIVE_INFINITY;
    this.bucket = RateBucket.needed(limits)
      ? new RateBucket(key, limits, deps.store, deps.clock, onChange, (e) =>
          deps.onError(`rate bucket ${key}`, e),
        )
      : null;
  }

  /** A call in flight now ends (answer or timeout) within the upstream's timeout. */
  callsUntil(now: number): number {
    return this.inFlight > 0 ? now + this.callTimeoutMs : now;
  }

  /** Joins the lease rebalancing on first use, so upstreams nobody calls cost no database work. */
  activate(): void {
    if (this.leased && !this.active) {
      this.active = true;
      this.deps.keeper.register(this);
    }
  }

  private get leased(): boolean {
    return Number.isFinite(this.maxConcurrency);
  }

  /** Requests this process may have in flight in this scope now. */
  capacity(now: number): number {
    let capacity = this.leased ? (now < this.validUntil ? this.granted : 0) : Number.POSITIVE_INFINITY;
    if (this.pacing) capacity = Math.min(capacity, this.pacing.limit);
    return capacity;
  }

  demand(): number {
    return Math.min(this.inFlight + this.waiting, this.pacing?.limit ?? Number.POSITIVE_INFINITY);
  }

  /** No slot: if that is because this process holds no lease at all, ask for one now. */
  starved(now: number): void {
    if (this.leased && (this.granted === 0 || now >= this.validUntil)) this.deps.keeper.kick();
  }

  /** After a release: hand back promptly what the last rebalance took away. */
  released(): void {
    if (this.held > this.granted && this.inFlight <= this.granted) this.deps.keeper.kick();
  }

  /** Slots of maxConcurrency this process holds a valid lease on now. */
  grantAt(now: number): number {
    return this.leased && now < this.validUntil ? this.granted : 0;
  }

  lowerGrant(granted: number): void {
    this.granted = Math.min(this.granted, granted);
  }

  applyGrant(granted: number, held: number, validUntil: number): void {
    this.granted = granted;
    this.held = held;
    this.validUntil = validUntil;
    this.onChange();
  }

  close(): void {
    this.bucket?.close();
  }
}

export interface SlotRequest {
  tenantId: string;
  batchId: string;
  /** The upstream's own model name (per-model limits are keyed by it). */
  model: string;
  /** Estimated tokens, charged to tokens-per-minute limits. */
  tokens: number;
  /** Epoch ms: stop waiting then. */
  deadline: number;
}

/** How a request that held a slot went: null when it was never sent. */
export type SlotOutcome = { status: number | null; tokensUsed: number | null } | null;

export interface Slot {
  /**
   * Gives the slot back. `holdMs`: keep it that much longer (an upstream that answered 429
   * with Retry-After gets no other request in its place until then).
   */
  release(outcome: SlotOutcome, holdMs?: number): void;
}

interface Waiter {
  scopes: LimitScope[];
  tokens: number;
  start: () => void;
}

/** setTimeout cannot wait longer (about 24.8 days); a later deadline needs no timer anyway. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Deadline timers shared by the waiters with the same deadline: all of a batch's requests
 * have its expiry as theirs, so thousands waiting in the queue hold one timer, not one each
 * (a timer per waiter was a Timeout, an async-hook init and a timer-list insert per request).
 */
class DeadlineAlarms {
  private readonly alarms = new Map<number, Watchers>();

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` at `deadline` (epoch ms) unless the returned function is called first. */
  at(deadline: number, fn: () => void): () => void {
    const wait = deadline - this.clock.now();
    if (wait >= MAX_TIMER_MS) return () => undefined;
    let alarm = this.alarms.get(deadline);
    if (!alarm) {
      const created = new Watchers(() => {
        clearTimeout(timer);
        if (this.alarms.get(deadline) === created) this.alarms.delete(deadline);
      });
      const timer = setTimeout(() => {
        this.alarms.delete(deadline);
        created.fire();
      }, wait);
      this.alarms.set(deadline, created);
      alarm = created;
    }
    return alarm.add(fn);
  }
}

/** The limits of one upstream in this process: its fair queue, scopes and pacing. */
export class UpstreamLimiter {
  readonly pacing: AdaptiveConcurrency;
  private readonly queue = new FairQueue<Waiter>();
  private readonly scope: LimitScope;
  private readonly modelScopes = new Map<string, LimitScope>();
  private readonly alarms: DeadlineAlarms;
  private pumping = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly deps: LimiterDeps,
  ) {
    this.alarms = new DeadlineAlarms(deps.clock);
    this.pacing = new AdaptiveConcurrency({ max: upstream.limits.maxConcurrency, ...deps.pacing }, () =>
      deps.clock.now(),
    );
    this.scope = new LimitScope(upstream.name, upstream.limits, upstream.timeoutMs, this.pacing, deps, () =>
      this.pump(),
    );
  }

  /**
   * Waits for a slot: resolves with it, with null if `deadline` comes first, or rejects with
   * an AbortError when `signal` aborts.
   */
  acquire(request: SlotRequest, signal: AbortSignal): Promise<Slot | null> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    const wait = request.deadline - this.deps.clock.now();
    if (wait <= 0) return Promise.resolve(null);
    const scopes = [this.scope];
    const modelScope = this.modelScope(request.model);
    if (modelScope) scopes.push(modelScope);
    for (const s of scopes) s.activate();

    return new Promise<Slot | null>((resolve, reject) => {
      const waiter: Waiter = { scopes, tokens: request.tokens, start: () => undefined };
      for (const s of scopes) s.waiting++;
      const leave = (): void => {
        for (const s of scopes) s.waiting--;
      };
      if (this.queue.size === 0 && this.eligible(waiter, this.deps.clock.now())) {
        resolve(this.start(waiter));
        return;
      }
      const cancel = this.queue.push(request.tenantId, request.batchId, waiter);
      const unwatch = onAbort(signal, () => {
        if (!cancel()) return;
        unalarm();
        leave();
        reject(abortError(signal));
      });
      const unalarm = this.alarms.at(request.deadline, () => {
        if (!cancel()) return;
        unwatch();
        leave();
        resolve(null);
      });
      waiter.start = () => {
        unalarm();
        unwatch();
        resolve(this.start(waiter));
      };
      this.pump();
    });
  }

  /** Calls in flight to the upstream from this process. */
  get inFlight(): number {
    return this.scope.inFlight;
  }

  /** Requests waiting in this process for a slot. */
  get queued(): number {
    return this.queue.size;
  }

  /** Slots of the upstream's maxConcurrency leased to this process now. */
  leaseShare(now: number): number {
    return this.scope.grantAt(now);
  }

  close(): void {
    this.scope.close();
    for (const s of this.modelScopes.values()) s.close();
  }

  /** Starts waiting requests while their scopes allow, in the queue's fair order. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.size > 0) {
        const now = this.deps.clock.now();
        if (this.scope.inFlight >= this.scope.capacity(now)) {
          this.scope.starved(now);
          break;
        }
        const waiter = this.queue.take((w) => this.eligible(w, now));
        if (!waiter) break;
        waiter.start();
      }
    } finally {
      this.pumping = false;
    }
  }

  private eligible(waiter: Waiter, now: number): boolean {
    for (const s of waiter.scopes) {
      if (s.inFlight >= s.capacity(now)) {
        s.starved(now);
        return false;
      }
    }
    for (const s of waiter.scopes) {
      const startable = Math.min(s.waiting, s.capacity(now) - s.inFlight);
      if (s.bucket && !s.bucket.has(waiter.tokens, startable)) return false;
    }
    return true;
  }

  private start(waiter: Waiter): Slot {
    const { scopes, tokens } = waiter;
    for (const s of scopes) {
      s.waiting--;
      s.inFlight++;
      s.bucket?.take(tokens);
    }
    let released = false;
    const sentAt = this.deps.clock.now();
    const free = (): void => {
      for (const s of scopes) {
        s.inFlight--;
        s.released();
      }
      this.pump();
    };
    return {
      release: (outcome, holdMs = 0) => {
        if (released) return;
        released = true;
        for (const s of scopes) {
          // Never sent: its tokens go back. Sent without an answer: the estimate stands.
          const used = outcome === null ? 0 : outcome.tokensUsed;
          if (used !== null) s.bucket?.correct(tokens, used);
        }
        if (outcome?.status != null) {
          const kind = isOverload(outcome.status)
            ? 'overload'
            : outcome.status >= 200 && outcome.status < 300
              ? 'success'
              : 'other';
          this.pacing.record(kind, this.deps.clock.now() - sentAt);
        }
        if (holdMs > 0) setTimeout(free, holdMs).unref();
        else free();
      },
    };
  }

  private modelScope(model: string): LimitScope | null {
    const limits = this.upstream.limits.models;
    // hasOwn: a model named "constructor" must not find Object.prototype's.
    if (!Object.hasOwn(limits, model)) return null;
    let scope = this.modelScopes.get(model);
    if (!scope) {
      scope = new LimitScope(
        `${this.upstream.name}/${model}`,
        limits[model],
        this.upstream.timeoutMs,
        null,
        this.deps,
        () => this.pump(),
      );
      this.modelScopes.set(model, scope);
    }
    return scope;
  }
}
