/**
 * The congestion model: a server that can serve `capacity` requests at once and, optionally,
 * `capacityTpm` tokens per minute. Beyond either it answers 429 at once, with Retry-After,
 * as providers do; near full capacity it slows down (queueing), so overload is a signal that
 * grows with the client's concurrency, unlike a load-independent error rate.
 */
import type { SimulatorOptions } from './options';

export type RefusalCause = 'capacity' | 'tpm';

export type Admission =
  | { admitted: true; /** Latency multiplier for this request, >= 1. */ slowdown: number }
  | { admitted: false; cause: RefusalCause; retryAfterMs: number; message: string };

const ADMITTED: Admission = Object.freeze({ admitted: true, slowdown: 1 });

export type CapacityOptions = Pick<
  SimulatorOptions,
  'capacity' | 'capacityTpm' | 'capacityRetryAfterMs' | 'capacitySlowdown'
>;

export class CapacityModel {
  /** Requests admitted and not yet released (answered, reset, or given up by the client). */
  private serving = 0;
  private tokens: number;
  private refilledAt: number;
  /** Tokens per millisecond. */
  private readonly rate: number;
  /**
   * One second's worth: providers enforce per-minute limits over shorter windows (OpenAI
   * documents 60,000 per minute as 1,000 per second), so a burst cannot spend a whole minute.
   */
  private readonly burst: number;

  constructor(
    private readonly options: CapacityOptions,
    private readonly now: () => number,
  ) {
    this.rate = options.capacityTpm / 60_000;
    this.burst = options.capacityTpm / 60;
    this.tokens = this.burst;
    this.refilledAt = now();
  }

  get inService(): number {
    return this.serving;
  }

  /**
   * Admits a request costing `tokens`, or says why not. An admitted request holds a slot
   * until release(); a refused one takes neither a slot nor tokens.
   */
  admit(tokens: number): Admission {
    const { capacity, capacityTpm } = this.options;
    if (capacity > 0 && this.serving >= capacity) {
      return {
        admitted: false,
        cause: 'capacity',
        retryAfterMs: this.options.capacityRetryAfterMs,
        message: `The model is at capacity (${capacity} requests in flight). Please retry after the Retry-After delay. (simulated)`,
      };
    }
    if (capacityTpm > 0) {
      this.refill();
      // A request larger than the bucket passes when the bucket is full, so it is not refused forever.
      const need = Math.min(tokens, this.burst);
      if (this.tokens < need) {
        return {
          admitted: false,
          cause: 'tpm',
          retryAfterMs: Math.max(1, Math.ceil((need - this.tokens) / this.rate)),
          message: `Rate limit reached on tokens per min (TPM): Limit ${capacityTpm}, Requested ${tokens}. Please retry after the Retry-After delay. (simulated)`,
        };
      }
      this.tokens -= tokens;
    }
    this.serving++;
    if (capacity === 0 || this.options.capacitySlowdown === 0) return ADMITTED;
    const load = this.serving / capacity;
    return { admitted: true, slowdown: 1 + this.options.capacitySlowdown * load * load };
  }

  release(): void {
    this.serving--;
  }

  /** A fresh token bucket (for POST /_sim/reset); requests in service keep their slots. */
  resetTokens(): void {
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) * this.rate);
    this.refilledAt = now;
  }
}
