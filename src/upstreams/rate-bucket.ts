import type { Clock } from './clock';
import type { LimitStore, TakeResult } from './limit-store';

export interface RateLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** Permits fetched per round trip: at most this many seconds' worth of the rate. */
const BLOCK_SECONDS = 0.2;
/** Permits unused for this long are dropped: kept, they could add up to a burst. */
const PERMIT_TTL_MS = 5_000;
const MIN_WAIT_MS = 5;
const MAX_WAIT_MS = 1_000;
const ERROR_WAIT_MS = 1_000;

/** One dimension of a bucket: per-minute limit turned into capacity, refill rate and block size. */
class Dimension {
  readonly perSecond: number;
  /** Burst: one second's worth, and at least one unit. */
  readonly capacity: number;
  readonly block: number;

  constructor(readonly perMinute: number) {
    this.perSecond = perMinute / 60;
    this.capacity = Math.max(1, this.perSecond);
    this.block = Math.max(1, Math.floor(this.perSecond * BLOCK_SECONDS));
  }

  /** Milliseconds until the shared bucket holds `needed` again, from the level `left`. */
  waitMs(needed: number, left: number): number {
    return left >= needed ? 0 : ((needed - left) / this.perSecond) * 1000;
  }
}

/**
 * This process's side of one scope's shared token bucket (see limiter.ts): a small local
 * stock of permits, restocked from Postgres in blocks. has() never waits: when the stock is
 * short it starts one restock and reports false; `onRestock` runs when trying again makes sense.
 */
export class RateBucket {
  private readonly requestRate: Dimension | null;
  private readonly tokenRate: Dimension | null;
  private requests = 0;
  private tokens = 0;
  private stockedAt = 0;
  /** Usage corrections (estimate minus reported) not yet applied to the shared bucket. */
  private adjust = 0;
  private created = false;
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly scope: string,
    limits: RateLimits,
    private readonly store: LimitStore,
    private readonly clock: Clock,
    private readonly onRestock: () => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.requestRate = limits.requestsPerMinute ? new Dimension(limits.requestsPerMinute) : null;
    this.tokenRate = limits.tokensPerMinute ? new Dimension(limits.tokensPerMinute) : null;
  }

  static needed(limits: RateLimits): boolean {
    return Boolean(limits.requestsPerMinute || limits.tokensPerMinute);
  }

  /**
   * Whether permits for one request of `tokens` are in stock. If not, restocks for up to
   * `waiting` such requests (those that have a slot to start in).
   */
  has(tokens: number, waiting: number): boolean {
    if (this.clock.now() - this.stockedAt > PERMIT_TTL_MS) {
      this.requests = 0;
      this.tokens = 0;
    }
    const requestsOk = !this.requestRate || this.requests >= 1;
    const tokensOk = !this.tokenRate || this.tokens >= tokens;
    if (requestsOk && tokensOk) return true;
    if (!this.busy && !this.closed) {
      this.busy = true;
      void this.restock(requestsOk ? 0 : Math.max(1, waiting), tokensOk ? 0 : tokens, Math.max(1, waiting));
    }
    return false;
  }

  take(tokens: number): void {
    if (this.requestRate) this.requests -= 1;
    if (this.tokenRate) this.tokens -= tokens;
  }

  /** The upstream reported `actual` tokens for a request that took `estimated`. */
  correct(estimated: number, actual: number): void {
    if (this.tokenRate) this.adjust += estimated - actual;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async restock(requests: number, tokens: number, waiting: number): Promise<void> {
    const r = this.requestRate;
    const t = this.tokenRate;
    const wantRequests = r && requests > 0 ? Math.min(requests, r.block) : 0;
    const needTokens = t && tokens > 0 ? tokens - this.tokens : 0;
    const wantTokens =
      t && needTokens > 0 ? Math.max(needTokens, Math.min(t.block, tokens * waiting - this.tokens)) : 0;
    const adjust = this.adjust;
    this.adjust = 0;
    let waitMs = 0;
    try {
      if (!this.created) {
        await this.store.ensureBucket(this.scope, r?.capacity ?? 0, t?.capacity ?? 0);
        this.created = true;
      }
      const result: TakeResult = await this.store.take(this.scope, {
        requests: { capacity: r?.capacity ?? 0, perSecond: r?.perSecond ?? 0, want: wantRequests },
        tokens: {
          capacity: t?.capacity ?? 0,
          perSecond: t?.perSecond ?? 0,
          want: wantTokens,
          need: needTokens,
          adjust,
        },
      });
      if (result.requests > 0 || result.tokens > 0) {
        this.requests += result.requests;
        this.tokens += result.tokens;
        this.stockedAt = this.clock.now();
      } else {
        const requestWait = r && wantRequests > 0 ? r.waitMs(1, result.requestsLeft) : 0;
        const tokenWait =
          t && wantTokens > 0 ? t.waitMs(Math.min(needTokens, t.capacity), result.tokensLeft) : 0;
        waitMs = Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, requestWait, tokenWait));
      }
    } catch (error) {
      this.adjust += adjust;
      this.created = false;
      this.onError(error);
      waitMs = ERROR_WAIT_MS;
    }
    if (this.closed) return;
    if (waitMs === 0) {
      this.busy = false;
      this.onRestock();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.busy = false;
      this.onRestock();
    }, waitMs);
  }
}
