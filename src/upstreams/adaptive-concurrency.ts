/**
 * AIMD pacing of one upstream in this process: a 429 or 503 halves the concurrency it is
 * given, each success adds 1/limit (so one slot per limit's worth of successes), up to the
 * configured maximum. The shared limits (limiter.ts) stay the hard ceiling; this only
 * backs off below them when the upstream says it is overloaded.
 */
export class AdaptiveConcurrency {
  private value: number;
  /** Bumped by each decrease; a request carries the generation its slot was granted in. */
  private current = 0;

  constructor(private readonly max: number) {
    this.value = max;
  }

  get generation(): number {
    return this.current;
  }

  get limit(): number {
    return Math.max(1, Math.floor(this.value));
  }

  onSuccess(): void {
    if (this.value < this.max) this.value = Math.min(this.max, this.value + 1 / this.value);
  }

  /**
   * `sentIn`: the generation the overloaded request was sent in. Requests already in flight at
   * the last decrease answer with the overload that decrease reacted to, so they must not cut
   * again; otherwise one burst of 429s would collapse the limit to 1. (A generation, not a
   * timestamp: requests sent in the same millisecond as the decrease would tie.)
   */
  onOverload(sentIn: number): void {
    if (sentIn !== this.current) return;
    this.value = Math.max(1, this.value / 2);
    this.current++;
  }
}
