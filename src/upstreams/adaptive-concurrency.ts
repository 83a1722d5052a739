import type { Clock } from './clock';

/**
 * AIMD pacing of one upstream in this process: a 429 or 503 halves the concurrency it is
 * given, each success adds 1/limit (so one slot per limit's worth of successes), up to the
 * configured maximum. The shared limits (limiter.ts) stay the hard ceiling; this only
 * backs off below them when the upstream says it is overloaded.
 */
export class AdaptiveConcurrency {
  private value: number;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly max: number,
    private readonly clock: Clock,
  ) {
    this.value = max;
  }

  get limit(): number {
    return Math.max(1, Math.floor(this.value));
  }

  onSuccess(): void {
    if (this.value < this.max) this.value = Math.min(this.max, this.value + 1 / this.value);
  }

  /**
   * `sentAt`: when the overloaded request was sent. Requests already in flight at the last
   * decrease answer with the overload that decrease reacted to, so they must not cut again;
   * otherwise one burst of 429s would collapse the limit to 1.
   */
  onOverload(sentAt: number): void {
    if (sentAt < this.lastDecreaseAt) return;
    this.value = Math.max(1, this.value / 2);
    this.lastDecreaseAt = this.clock.now();
  }
}
