import type { Clock } from './clock';
import type { LimitStore } from './limit-store';

/** A concurrency scope as the lease keeper sees it (implemented by LimitScope in limiter.ts). */
export interface LeasedScope {
  readonly key: string;
  readonly maxConcurrency: number;
  readonly inFlight: number;
  /** Epoch ms by which every call now in flight in this scope has ended. */
  callsUntil(now: number): number;
  /** Slots this process could use now: in flight plus waiting, within its own pacing. */
  demand(): number;
  /** Lowers the grant at once; called before the lower figure is published. */
  lowerGrant(granted: number): void;
  /** The rebalance committed: `granted` may be used until `validUntil` (epoch ms). */
  applyGrant(granted: number, held: number, validUntil: number): void;
}

/** A lease lives this many refresh periods (at least LEASE_TTL_MIN_MS) without renewal. */
const LEASE_TTL_REFRESHES = 10;
const LEASE_TTL_MIN_MS = 5_000;

/**
 * Max-min fair split of `budget` slots over the workers' demands: everyone gets up to their
 * demand, the smallest demands filled first; what no demand claims is spread over the workers
 * with some demand, so a burst can start before the next rebalance. Workers without demand
 * get nothing, so an idle worker never sits on slots. Ties go by id: every worker computes
 * the same split.
 */
export function fairShares(
  budget: number,
  demands: ReadonlyArray<{ id: string; demand: number }>,
): Map<string, number> {
  const shares = new Map(demands.map((d) => [d.id, 0]));
  const active = demands.filter((d) => d.demand > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const give = (id: string, n: number): void => {
    shares.set(id, shares.get(id)! + n);
  };
  let remaining = budget;
  let hungry = active;
  while (remaining > 0 && hungry.length > 0) {
    const each = Math.floor(remaining / hungry.length);
    if (each === 0) {
      for (const d of hungry.slice(0, remaining)) give(d.id, 1);
      remaining = 0;
      break;
    }
    for (const d of hungry) {
      const n = Math.min(each, d.demand - shares.get(d.id)!);
      give(d.id, n);
      remaining -= n;
    }
    hungry = hungry.filter((d) => shares.get(d.id)! < d.demand);
  }
  for (let i = 0; remaining > 0 && active.length > 0; i = (i + 1) % active.length, remaining--)
    give(active[i].id, 1);
  return shares;
}

/**
 * Renews and rebalances this worker's concurrency leases (design in limiter.ts): every
 * `refreshMs`, and sooner on request (a starved scope, or slots to hand back), at most once
 * per quarter refresh.
 */
export class LeaseKeeper {
  private readonly scopes = new Set<LeasedScope>();
  private readonly ttlMs: number;
  private readonly minGapMs: number;
  private interval: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private lastRunAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly store: LimitStore,
    private readonly workerId: string,
    private readonly refreshMs: number,
    private readonly clock: Clock,
    private readonly onError: (error: unknown) => void,
  ) {
    this.ttlMs = Math.max(LEASE_TTL_MIN_MS, LEASE_TTL_REFRESHES * refreshMs);
    this.minGapMs = refreshMs / 4;
  }

  register(scope: LeasedScope): void {
    this.scopes.add(scope);
    if (!this.interval && !this.closed) {
      this.interval = setInterval(() => this.kick(), this.refreshMs);
      this.interval.unref();
    }
    this.kick();
  }

  /** Rebalances now, after any rebalance under way (tests drive the keeper step by step with it). */
  async rebalanceNow(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.run();
    await this.running;
  }

  /** Asks for a rebalance soon; calls arriving while one runs are folded into one more run. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const wait = this.lastRunAt + this.minGapMs - this.clock.now();
    if (wait <= 0) {
      this.running = this.run();
    } else if (!this.soon) {
      this.soon = setTimeout(() => {
        this.soon = undefined;
        this.kick();
      }, wait);
      this.soon.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.interval);
    clearTimeout(this.soon);
    await this.running;
    try {
      await this.store.releaseLeases(this.workerId);
    } catch (error) {
      this.onError(error); // the leases expire on their own
    }
  }

  private async run(): Promise<void> {
    const startedAt = this.clock.now();
    this.lastRunAt = startedAt;
    try {
      await this.rebalance(startedAt);
    } catch (error) {
      this.onError(error);
    }
    this.running = null;
    if (this.again) {
      this.again = false;
      this.kick();
    }
  }

  private async rebalance(startedAt: number): Promise<void> {
    // Sorted, so two workers lock shared scopes in the same order and cannot deadlock.
    const scopes = [...this.scopes].sort((a, b) => (a.key < b.key ? -1 : 1));
    const outcomes = await this.store.leaseTransaction(async (tx) => {
      const results: { scope: LeasedScope; granted: number; held: number }[] = [];
      for (const scope of scopes) {
        const others = await tx.others(scope.key, this.workerId);
        const demand = Math.min(scope.maxConcurrency, scope.demand());
        const shares = fairShares(scope.maxConcurrency, [
          ...others.map((o) => ({ id: o.workerId, demand: o.demand })),
          { id: this.workerId, demand },
        ]);
        const othersHeld = others.reduce((sum, o) => sum + o.held, 0);
        const granted = Math.max(0, Math.min(shares.get(this.workerId)!, scope.maxConcurrency - othersHeld));
        // Lowered before publishing, and what is in flight counts as held: the sum of what
        // all workers hold never exceeds the limit, even while shares move.
        scope.lowerGrant(granted);
        const held = Math.max(granted, scope.inFlight);
        await tx.put(
          scope.key,
          this.workerId,
          { demand, held, inFlight: scope.inFlight, callsUntil: scope.callsUntil(startedAt) },
          this.ttlMs,
        );
        results.push({ scope, granted, held });
      }
      return results;
    });
    // Our lease counts from the transaction's start on the database clock, so local time
    // from before it began is a safe (early) measure of its end; one refresh of margin.
    const validUntil = startedAt + this.ttlMs - this.refreshMs;
    for (const { scope, granted, held } of outcomes) scope.applyGrant(granted, held, validUntil);
  }
}
