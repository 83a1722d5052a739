/**
 * Adaptive pacing of one upstream in this process: how many requests it may have in flight,
 * below the configured (shared) maximum, learned from what the upstream answers.
 *
 * The signal is the overload share (429 and 503 among answers) over a window of answers, not
 * each 429 on its own. A provider answers 429 for two different reasons:
 * - load-independent: a per-key limit, a token bucket refilling, one hot model; the share of
 *   429s stays the same whatever our concurrency, and backing off only loses throughput;
 * - real overload: the share of 429s (or the latency) grows with our concurrency.
 * Classic AIMD halves on every 429 and so collapses under the first kind (a steady 10% of
 * 429s holds it near 4). Here, like loss-based TCP variants with a loss threshold:
 * - A window whose overload share exceeds the noise floor by `tolerance` (plus two standard
 *   errors of the window's sample) is an overload window. The upstream served about
 *   limit x (1 - excess share): that is the capacity estimate, and the limit is cut to just
 *   below it (by at most half at once).
 * - Cut and observe: a cut below the capacity should make the share fall; if the next window
 *   shows less than half that fall, the 429s did not come from our concurrency: the cut is
 *   undone and the noise floor is set to that share. The floor decays slowly, so it is
 *   re-learned (one probe) when the noise changes.
 * - Latency is the second overload signal, but only as it relates to concurrency (Little's
 *   law): when the limit grew and the next window shows the median latency up by
 *   `latencyRatio` while throughput (answers per second) did not grow, the extra requests only
 *   queued at the upstream: the growth is undone and that limit is the capacity. Latency on
 *   its own says nothing for LLM traffic (it follows the output length, which changes from
 *   batch to batch), so a slower workload never cuts the limit.
 * - Growth, CUBIC-like: fast (+`growth` per clean window) while far from the capacity
 *   estimate, +1 per window near it, so the limit spends its time just below the capacity it
 *   found, and fast again once past it (capacity may have grown).
 * The gateway keeps a slot that got a 429/503 for the answer's Retry-After before reusing it,
 * so refusals cannot cycle through freed slots faster than the upstream asked for.
 */

export interface PacingOptions {
  /** Hard ceiling: the upstream's configured maxConcurrency. */
  max: number;
  /** Lowest limit (never 0: one request must still probe). */
  min?: number;
  /** Answers per window: max(minWindow, limit). */
  minWindow?: number;
  /**
   * Overload share above the noise floor that counts as overload. (A load-independent share
   * above 1 - maxCut cannot be told apart by one cut: then the limit backs off, and each
   * request still waits its Retry-After.)
   */
  tolerance?: number;
  /** The largest cut of one window: the limit keeps at least this share. */
  maxCut?: number;
  growth?: number;
  /** The learned noise floor keeps this share of itself per window. */
  floorDecay?: number;
  /** Median latency up by this factor, with no more throughput, after a growth: queueing. */
  latencyRatio?: number;
}

export const PACING_DEFAULTS = {
  min: 1,
  minWindow: 40,
  tolerance: 0.03,
  maxCut: 0.5,
  growth: 0.25,
  floorDecay: 0.995,
  latencyRatio: 1.5,
} as const;

export type AnswerKind = 'success' | 'overload' | 'other';

export class AdaptiveConcurrency {
  private value: number;
  private readonly o: Required<PacingOptions>;
  /** The current window. */
  private answers = 0;
  private overloads = 0;
  private latencies: number[] = [];
  private windowStart: number | null = null;
  /** The last window: its limit, median latency and throughput (answers per second). */
  private previous: { limit: number; median: number; rate: number } | null = null;
  /** The overload share that is not ours to fix, learned by probing. */
  private floor = 0;
  /** Set by a cut: what it was, to undo it if the next window shows it did not help. */
  private probe: { before: number; share: number; expected: number } | null = null;
  /** The capacity estimated at the last overload (CUBIC's W_max, corrected by the share refused). */
  private capacity: number | null = null;
  private cuts = 0;

  constructor(
    options: PacingOptions,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.o = { ...PACING_DEFAULTS, ...options } as Required<PacingOptions>;
    this.value = this.o.max;
  }

  get limit(): number {
    return Math.max(this.o.min, Math.floor(this.value));
  }

  /** How many times overload cut the limit (for metrics and tests). */
  get decreases(): number {
    return this.cuts;
  }

  /** The overload share judged load-independent. */
  get noiseFloor(): number {
    return this.floor;
  }

  /** One answer from the upstream: what it was, and how long it took (successes count for latency). */
  record(kind: AnswerKind, latencyMs: number): void {
    this.windowStart ??= this.now();
    this.answers++;
    if (kind === 'overload') this.overloads++;
    if (kind === 'success') this.latencies.push(latencyMs);
    if (this.answers >= Math.max(this.o.minWindow, this.limit)) this.closeWindow();
  }

  private closeWindow(): void {
    const n = this.answers;
    const share = this.overloads / n;
    const median = medianOf(this.latencies);
    const elapsed = Math.max(1, this.now() - (this.windowStart ?? this.now()));
    const current = median === null ? null : { limit: this.limit, median, rate: (n * 1000) / elapsed };
    const previous = this.previous;
    this.previous = current;
    this.answers = 0;
    this.overloads = 0;
    this.latencies = [];
    this.windowStart = null;
    // Two standard errors of a share measured on n answers: small windows are noisy.
    const noise = 2 * Math.sqrt((Math.max(share, 0.01) * (1 - Math.min(share, 0.99))) / n);

    const probe = this.probe;
    this.probe = null;
    // Did the cut lower the share by at least half of what it should have, were the 429s ours?
    if (probe && share >= probe.share - (probe.share - probe.expected) / 2) {
      // No: they are not about our concurrency. Undo the cut; that share is the noise floor.
      this.floor = Math.max(this.floor, (share + probe.share) / 2);
      this.value = Math.max(this.value, probe.before);
      return;
    }
    this.floor *= this.o.floorDecay;

    const excess = share - this.floor;
    const overloaded = excess > this.o.tolerance + noise;
    const queueing =
      previous !== null &&
      current !== null &&
      current.limit > previous.limit * 1.05 &&
      current.median > previous.median * this.o.latencyRatio &&
      current.rate < previous.rate * 1.05;

    if (overloaded) {
      // The upstream refused `excess` of what we sent: it served about limit x (1 - excess).
      const before = this.value;
      this.capacity = Math.max(this.o.min, before * (1 - excess));
      const target = this.capacity * 0.95;
      this.value = Math.max(this.o.min, before * this.o.maxCut, target);
      // A cut all the way below the capacity estimate should bring the share down to the
      // floor; if the next window shows it did not, the 429s are not ours (see above).
      if (this.value <= target) this.probe = { before, share, expected: this.floor };
      this.cuts++;
      return;
    }
    if (queueing) {
      // More concurrency bought no throughput, only latency: back to where it was.
      this.capacity = previous.limit;
      this.value = Math.max(this.o.min, previous.limit);
      this.cuts++;
      return;
    }
    this.grow();
  }

  /** Fast while far from the capacity found at the last overload, one slot per window near it. */
  private grow(): void {
    if (this.value >= this.o.max) return;
    const near =
      this.capacity !== null && this.value >= this.capacity * 0.85 && this.value <= this.capacity * 1.25;
    const step = near ? 1 : Math.max(1, this.value * this.o.growth);
    this.value = Math.min(this.o.max, this.value + step);
  }
}

function medianOf(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
