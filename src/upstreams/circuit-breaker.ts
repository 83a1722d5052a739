import type { Clock } from './clock';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What one attempt says about the upstream's health. */
export type Health = 'healthy' | 'unhealthy' | 'unknown';

/** Leave to send one request; hand it back to record() with the outcome. */
export interface BreakerPass {
  readonly probe: boolean;
}

const NORMAL: BreakerPass = Object.freeze({ probe: false });

/** How soon to look again while another request is probing a half-open circuit. */
const PROBE_POLL_MS = 100;

/** When a circuit opens, and for how long (routing.breaker* in the configuration). */
export interface BreakerSettings {
  /** At least this many of the recent attempts failed... */
  readonly threshold: number;
  /** ...and they are at least this share of them... */
  readonly failureRate: number;
  /** ...among the last `window` first attempts. */
  readonly window: number;
  /** Then nothing passes for this long, before one probe. */
  readonly cooldownMs: number;
}

/**
 * Per-process circuit breaker of one upstream. Closed: everything passes. It opens when, among
 * its last `window` attempts, at least `threshold` were unhealthy (connection errors,
 * timeouts, 5xx) and they are at least `failureRate` of them: an upstream that is down, not
 * one with a share of failing requests (a 12% mix of 500s and resets is a batch's ordinary
 * weather, and the retries handle it). The window must be long enough for chance not to
 * reach the rate: at 12% failing, 10 of the last 20 happens about 7 times in a million
 * attempts, each stopping all traffic for the cool-down, while 50 of the last 100 has a
 * chance near 1e-20. The threshold does the same for a fresh window (10 failures among at most
 * 20 attempts). An upstream that goes down still opens the circuit after `window x
 * failureRate` failed first attempts at most, and a fresh worker's after `threshold`.
 * Open: nothing passes for `cooldownMs`, so traffic moves to the next upstream serving the
 * model. Then half-open: a single probe passes; its success closes the circuit, its failure
 * reopens it. Only first attempts count (the gateway says which): retries are requests that
 * failed already. Per process rather than shared: each worker learns of an outage after a
 * handful of its own requests, which costs less than a database round trip per attempt.
 */
export class CircuitBreaker {
  /** The last `window` attempts' health, as a ring: true = unhealthy. */
  private readonly recent: boolean[] = [];
  private next = 0;
  private failures = 0;
  private openedAt: number | null = null;
  private probing = false;

  constructor(
    private readonly settings: BreakerSettings,
    private readonly clock: Clock,
    private readonly onChange: (state: 'open' | 'closed', failures: number) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    if (this.openedAt === null) return 'closed';
    return this.clock.now() - this.openedAt >= this.settings.cooldownMs ? 'half-open' : 'open';
  }

  /** Whether a request could pass now, without claiming the half-open probe. */
  available(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half-open' && !this.probing);
  }

  /** Leave to send one request now, or null while open (or while another request probes). */
  tryPass(): BreakerPass | null {
    const state = this.state;
    if (state === 'closed') return NORMAL;
    if (state === 'half-open' && !this.probing) {
      this.probing = true;
      return { probe: true };
    }
    return null;
  }

  /** Epoch ms at which tryPass() may next succeed. */
  retryAt(): number {
    if (this.openedAt === null) return this.clock.now();
    const halfOpenAt = this.openedAt + this.settings.cooldownMs;
    return this.probing ? Math.max(halfOpenAt, this.clock.now() + PROBE_POLL_MS) : halfOpenAt;
  }

  /**
   * The health an attempt showed. `counts`: whether it joins the failure-rate window (a probe
   * always decides, whatever it is).
   */
  record(pass: BreakerPass, health: Health, counts = true): void {
    if (pass.probe) {
      this.probing = false;
      if (health === 'healthy') this.close();
      else if (health === 'unhealthy') this.open();
      return;
    }
    // Answers to requests let through before the circuit opened say nothing about now.
    if (this.openedAt !== null || health === 'unknown' || !counts) return;
    this.remember(health === 'unhealthy');
    const { threshold, failureRate } = this.settings;
    if (this.failures >= threshold && this.failures >= failureRate * this.recent.length) this.open();
  }

  private remember(unhealthy: boolean): void {
    if (this.recent.length < this.settings.window) {
      this.recent.push(unhealthy);
    } else {
      if (this.recent[this.next]) this.failures--;
      this.recent[this.next] = unhealthy;
      this.next = (this.next + 1) % this.settings.window;
    }
    if (unhealthy) this.failures++;
  }

  private open(): void {
    const wasClosed = this.openedAt === null;
    this.openedAt = this.clock.now();
    if (wasClosed) this.onChange('open', this.failures);
  }

  private close(): void {
    this.failures = 0;
    this.recent.length = 0;
    this.next = 0;
    this.openedAt = null;
    this.onChange('closed', 0);
  }
}
