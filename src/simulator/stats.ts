import { createHash } from 'node:crypto';

/**
 * Counters behind /_sim/stats: what tests and benchmarks need to check rate and concurrency
 * limits from the upstream's side. Memory is bounded whatever the traffic: arrival times and
 * per-second history live in rings, attempt counters in an LRU, and per-model counters are
 * capped.
 */

/** Why a request was answered 429. */
export type RateLimitCause = 'capacity' | 'tpm' | 'directive' | 'global';

/** One second of traffic; seconds without traffic and with nothing in flight are left out. */
export interface SecondStats {
  /** Epoch second this entry covers. */
  t: number;
  /** Time-weighted averages over the part of the second the counters were live. */
  inFlight: number;
  serving: number;
  arrivals: number;
  rateLimited: number;
}

export interface SimulatorStats {
  totalRequests: number;
  /** Requests between arrival and the end of their answer (or connection), whatever the outcome. */
  inFlight: number;
  peakInFlight: number;
  /** Requests admitted by the congestion model and holding a slot (see --capacity). */
  serving: number;
  peakServing: number;
  /** Time-weighted averages from the first arrival to now (or to the last request's end when idle). */
  avgInFlight: number;
  avgServing: number;
  /** The span those averages cover, in milliseconds. */
  activeMs: number;
  /** HTTP status -> count; injected faults that send no status count as "reset" and "hang". */
  byStatus: Record<string, number>;
  /** 429s by what caused them: the capacity or TPM model, a `simulate` directive, or --rate-limit-rate. */
  rateLimited: Record<RateLimitCause, number>;
  byModel: Record<string, number>;
  /**
   * Inference requests by the Authorization header they came with, as credentialTag() names
   * it (a digest, so no key shows here), `none` without one; in the totals only.
   */
  byCredential: Record<string, number>;
  /** Arrival time (epoch ms) of each request, oldest first, the most recent ones only. */
  requestTimes: number[];
  /** Per-second history, oldest first, the most recent seconds only. */
  perSecond: SecondStats[];
}

/** Keeps the last `capacity` items pushed; grows with use, so idle counters cost nothing. */
class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  push(value: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(value);
    } else if (this.capacity > 0) {
      this.items[this.next] = value;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  toArray(): T[] {
    return [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** The second being accumulated: areas are level x milliseconds. */
interface OpenSecond {
  t: number;
  coveredMs: number;
  inFlightArea: number;
  servingArea: number;
  arrivals: number;
  rateLimited: number;
}

const openSecond = (t: number): OpenSecond => ({
  t,
  coveredMs: 0,
  inFlightArea: 0,
  servingArea: 0,
  arrivals: 0,
  rateLimited: 0,
});

const close = (s: OpenSecond): SecondStats => ({
  t: s.t,
  inFlight: s.coveredMs > 0 ? s.inFlightArea / s.coveredMs : 0,
  serving: s.coveredMs > 0 ? s.servingArea / s.coveredMs : 0,
  arrivals: s.arrivals,
  rateLimited: s.rateLimited,
});

const NO_RATE_LIMITS = (): Record<RateLimitCause, number> => ({
  capacity: 0,
  tpm: 0,
  directive: 0,
  global: 0,
});

export interface CounterLimits {
  maxRequestTimes: number;
  maxHistorySeconds: number;
}

/**
 * One set of counters: for all traffic, or for one model. Every change of a level first
 * integrates the old level over the time since the last change, so averages are exact
 * whatever the latency; `now` is injected so tests need no real time.
 */
export class Counters {
  total = 0;
  inFlight = 0;
  peakInFlight = 0;
  serving = 0;
  peakServing = 0;
  readonly byStatus = new Map<string, number>();
  readonly rateLimited = NO_RATE_LIMITS();
  private readonly times: Ring<number>;
  private readonly history: Ring<SecondStats>;
  private startedAt: number | undefined;
  private changedAt = 0;
  private inFlightArea = 0;
  private servingArea = 0;
  private second: OpenSecond | undefined;
  private readonly maxHistorySeconds: number;

  constructor(
    limits: CounterLimits,
    private readonly now: () => number,
  ) {
    this.times = new Ring(limits.maxRequestTimes);
    this.history = new Ring(limits.maxHistorySeconds);
    this.maxHistorySeconds = limits.maxHistorySeconds;
  }

  arrive(): void {
    const now = this.advance();
    this.total++;
    this.times.push(Math.round(now));
    if (this.second) this.second.arrivals++;
    if (++this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
  }

  depart(): void {
    this.advance();
    this.inFlight--;
  }

  /** A slot of the congestion model taken (admit) or given back (release). */
  admit(): void {
    this.advance();
    if (++this.serving > this.peakServing) this.peakServing = this.serving;
  }

  release(): void {
    this.advance();
    this.serving--;
  }

  outcome(status: string): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
  }

  /** Counts a 429 by cause; its status is counted by outcome() as any other. */
  limited(cause: RateLimitCause): void {
    this.advance();
    this.rateLimited[cause]++;
    if (this.second) this.second.rateLimited++;
  }

  snapshot(byModel: Record<string, number>, byCredential: Record<string, number> = {}): SimulatorStats {
    // Integrating up to now while something is in flight; an idle run's window ends at its last event.
    if (this.inFlight > 0 || this.serving > 0) this.advance();
    const activeMs = this.startedAt === undefined ? 0 : this.changedAt - this.startedAt;
    const perSecond = this.history.toArray();
    if (this.second && this.second.coveredMs > 0) perSecond.push(close(this.second));
    if (perSecond.length > this.maxHistorySeconds)
      perSecond.splice(0, perSecond.length - this.maxHistorySeconds);
    return {
      totalRequests: this.total,
      inFlight: this.inFlight,
      peakInFlight: this.peakInFlight,
      serving: this.serving,
      peakServing: this.peakServing,
      avgInFlight: activeMs > 0 ? this.inFlightArea / activeMs : 0,
      avgServing: activeMs > 0 ? this.servingArea / activeMs : 0,
      activeMs,
      byStatus: Object.fromEntries(this.byStatus),
      rateLimited: { ...this.rateLimited },
      byModel,
      byCredential,
      requestTimes: this.times.toArray(),
      perSecond,
    };
  }

  /** Integrates the current levels up to now, closing every second passed on the way. */
  private advance(): number {
    const now = this.now();
    if (this.startedAt === undefined || this.second === undefined) {
      this.startedAt = now;
      this.changedAt = now;
      this.second = openSecond(Math.floor(now / 1000));
      return now;
    }
    let from = this.changedAt;
    if (now <= from) return now;
    const { inFlight, serving } = this;
    this.inFlightArea += inFlight * (now - from);
    this.servingArea += serving * (now - from);
    const busy = inFlight > 0 || serving > 0;
    let second = this.second;
    while (from < now) {
      const end = Math.min(now, (second.t + 1) * 1000);
      second.coveredMs += end - from;
      second.inFlightArea += inFlight * (end - from);
      second.servingArea += serving * (end - from);
      from = end;
      if (from < now) {
        this.history.push(close(second));
        // An idle gap adds no entries: skip to the second `now` falls in.
        second = openSecond(busy ? second.t + 1 : Math.floor(now / 1000));
        if (!busy) from = Math.max(from, second.t * 1000);
      }
    }
    this.second = second;
    this.changedAt = now;
    return now;
  }
}

/** Beyond this many distinct models (or credentials), new ones are only counted in the totals. */
const MAX_MODELS = 1000;

/**
 * How /_sim/stats names an Authorization header: the first 16 hex digits of its SHA-256, or
 * `none`. A test computes the same from the key it expects, and the key itself never shows.
 */
export function credentialTag(authorization: string | undefined): string {
  if (authorization === undefined) return 'none';
  return createHash('sha256').update(authorization).digest('hex').slice(0, 16);
}

export class StatsRegistry {
  private all: Counters;
  private models = new Map<string, Counters>();
  private credentials = new Map<string, number>();

  constructor(
    private readonly limits: CounterLimits,
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    this.all = new Counters(limits, now);
  }

  get global(): Counters {
    return this.all;
  }

  /** Counters of a model, created on first use; undefined once the cap is reached. */
  forModel(model: string): Counters | undefined {
    let counters = this.models.get(model);
    if (counters === undefined && this.models.size < MAX_MODELS) {
      counters = new Counters(this.limits, this.now);
      this.models.set(model, counters);
    }
    return counters;
  }

  /** Counts an inference request under the credential it came with. */
  credential(authorization: string | undefined): void {
    const tag = credentialTag(authorization);
    const n = this.credentials.get(tag);
    if (n !== undefined) this.credentials.set(tag, n + 1);
    else if (this.credentials.size < MAX_MODELS) this.credentials.set(tag, 1);
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  snapshot(model?: string): SimulatorStats {
    if (model !== undefined) {
      const counters =
        this.models.get(model) ?? new Counters({ maxRequestTimes: 0, maxHistorySeconds: 0 }, this.now);
      return counters.snapshot({ [model]: counters.total });
    }
    const byModel: Record<string, number> = {};
    for (const [name, counters] of this.models) byModel[name] = counters.total;
    return this.all.snapshot(byModel, Object.fromEntries(this.credentials));
  }

  /**
   * Zeroes everything. Requests still in flight keep references to the old counters, so
   * their departures cannot drive the new ones negative.
   */
  reset(): void {
    this.all = new Counters(this.limits, this.now);
    this.models = new Map();
    this.credentials = new Map();
  }
}

/**
 * Attempt numbers per request identity, for `simulate.fail_times`. A Map iterates in
 * insertion order, so re-inserting on each hit makes the first key the least recently used.
 */
export class AttemptTracker {
  private attempts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  /** Records one more attempt and returns its number, starting at 1. */
  next(key: string): number {
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.delete(key);
    this.attempts.set(key, attempt);
    if (this.attempts.size > this.capacity) {
      const oldest = this.attempts.keys().next();
      if (!oldest.done) this.attempts.delete(oldest.value);
    }
    return attempt;
  }

  get size(): number {
    return this.attempts.size;
  }

  clear(): void {
    this.attempts = new Map();
  }
}
