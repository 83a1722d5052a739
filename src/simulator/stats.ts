/**
 * Counters behind /_sim/stats: what tests need to check rate and concurrency limits from
 * the upstream's side. Memory is bounded whatever the traffic: arrival times live in a
 * ring, attempt counters in an LRU, and per-model counters are capped.
 */

export interface SimulatorStats {
  totalRequests: number;
  inFlight: number;
  peakInFlight: number;
  /** HTTP status -> count; injected faults that send no status count as "reset" and "hang". */
  byStatus: Record<string, number>;
  byModel: Record<string, number>;
  /** Arrival time (epoch ms) of each request, oldest first, the most recent ones only. */
  requestTimes: number[];
}

/** Keeps the last `capacity` numbers pushed; grows with use, so idle counters cost nothing. */
class Ring {
  private readonly items: number[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  push(value: number): void {
    if (this.items.length < this.capacity) {
      this.items.push(value);
    } else if (this.capacity > 0) {
      this.items[this.next] = value;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  toArray(): number[] {
    return [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** One set of counters: for all traffic, or for one model. */
export class Counters {
  total = 0;
  inFlight = 0;
  peakInFlight = 0;
  readonly byStatus = new Map<string, number>();
  private readonly times: Ring;

  constructor(maxTimes: number) {
    this.times = new Ring(maxTimes);
  }

  arrive(now: number): void {
    this.total++;
    this.times.push(now);
    if (++this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
  }

  depart(): void {
    this.inFlight--;
  }

  outcome(status: string): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
  }

  snapshot(byModel: Record<string, number>): SimulatorStats {
    return {
      totalRequests: this.total,
      inFlight: this.inFlight,
      peakInFlight: this.peakInFlight,
      byStatus: Object.fromEntries(this.byStatus),
      byModel,
      requestTimes: this.times.toArray(),
    };
  }
}

/** Beyond this many distinct models, new ones are only counted in the totals. */
const MAX_MODELS = 1000;

export class StatsRegistry {
  private all: Counters;
  private models = new Map<string, Counters>();

  constructor(private readonly maxTimes: number) {
    this.all = new Counters(maxTimes);
  }

  get global(): Counters {
    return this.all;
  }

  /** Counters of a model, created on first use; undefined once the cap is reached. */
  forModel(model: string): Counters | undefined {
    let counters = this.models.get(model);
    if (counters === undefined && this.models.size < MAX_MODELS) {
      counters = new Counters(this.maxTimes);
      this.models.set(model, counters);
    }
    return counters;
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  snapshot(model?: string): SimulatorStats {
    if (model !== undefined) {
      const counters = this.models.get(model) ?? new Counters(0);
      return counters.snapshot({ [model]: counters.total });
    }
    const byModel: Record<string, number> = {};
    for (const [name, counters] of this.models) byModel[name] = counters.total;
    return this.all.snapshot(byModel);
  }

  /**
   * Zeroes everything. Requests still in flight keep references to the old counters, so
   * their departures cannot drive the new ones negative.
   */
  reset(): void {
    this.all = new Counters(this.maxTimes);
    this.models = new Map();
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
