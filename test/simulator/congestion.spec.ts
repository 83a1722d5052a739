import { CapacityModel, type CapacityOptions } from '../../src/simulator/capacity';
import { Counters, StatsRegistry } from '../../src/simulator/stats';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const model = (options: Partial<CapacityOptions>, now: () => number): CapacityModel =>
  new CapacityModel(
    { capacity: 0, capacityTpm: 0, capacityRetryAfterMs: 200, capacitySlowdown: 0, ...options },
    now,
  );

describe('simulator congestion model', () => {
  it('serves up to its capacity and refuses the rest with the configured Retry-After', () => {
    const clock = manualClock();
    const capacity = model({ capacity: 2, capacityRetryAfterMs: 150 }, clock.now);
    expect(capacity.admit(10)).toEqual({ admitted: true, slowdown: 1 });
    expect(capacity.admit(10)).toEqual({ admitted: true, slowdown: 1 });
    const refused = capacity.admit(10);
    expect(refused).toMatchObject({ admitted: false, cause: 'capacity', retryAfterMs: 150 });
    expect(capacity.inService).toBe(2);
    capacity.release();
    expect(capacity.admit(10).admitted).toBe(true);
    expect(capacity.inService).toBe(2);
  });

  it('slows down quadratically towards capacity', () => {
    const capacity = model({ capacity: 4, capacitySlowdown: 2 }, manualClock().now);
    const slowdowns = [1, 2, 3, 4].map(() => {
      const admission = capacity.admit(1);
      if (!admission.admitted) throw new Error('expected admission');
      return admission.slowdown;
    });
    // 1 + 2 x (n/4)^2
    expect(slowdowns).toEqual([1.125, 1.5, 2.125, 3]);
  });

  it('meters tokens per minute as a bucket of one second, advertising the time to refill', () => {
    const clock = manualClock();
    // 60,000 per minute: 1,000 per second, one token per millisecond.
    const tpm = model({ capacityTpm: 60_000 }, clock.now);
    expect(tpm.admit(600).admitted).toBe(true);
    expect(tpm.admit(400).admitted).toBe(true);
    const refused = tpm.admit(300);
    expect(refused).toMatchObject({ admitted: false, cause: 'tpm', retryAfterMs: 300 });
    // A refusal spends nothing: after 299 ms the request still does not fit, after 300 it does.
    clock.advance(299);
    expect(tpm.admit(300).admitted).toBe(false);
    clock.advance(1);
    expect(tpm.admit(300).admitted).toBe(true);
    // Refills stop at one second's worth, so idling does not bank a minute.
    clock.advance(60_000);
    expect(tpm.admit(1000).admitted).toBe(true);
    expect(tpm.admit(1)).toMatchObject({ admitted: false, cause: 'tpm', retryAfterMs: 1 });
    // TPM refusals take no concurrency slot.
    expect(tpm.inService).toBe(4);
  });

  it('lets a request larger than the bucket through when the bucket is full, then waits off the debt', () => {
    const clock = manualClock();
    const tpm = model({ capacityTpm: 60_000 }, clock.now);
    expect(tpm.admit(5_000).admitted).toBe(true);
    // 4,000 tokens of debt plus 10 to spend: 4,010 ms.
    expect(tpm.admit(10)).toMatchObject({ admitted: false, retryAfterMs: 4_010 });
    tpm.resetTokens();
    expect(tpm.admit(10).admitted).toBe(true);
  });

  it('checks concurrency before tokens, so a refusal for capacity spends no tokens', () => {
    const clock = manualClock();
    const both = model({ capacity: 1, capacityTpm: 60_000 }, clock.now);
    expect(both.admit(500).admitted).toBe(true);
    expect(both.admit(500)).toMatchObject({ admitted: false, cause: 'capacity' });
    both.release();
    expect(both.admit(500).admitted).toBe(true);
  });
});

describe('simulator time-weighted statistics', () => {
  const limits = { maxRequestTimes: 100, maxHistorySeconds: 100 };

  it('averages in-flight over time from the first arrival to the last departure', () => {
    // Starts on a second boundary so the per-second history is easy to read.
    const clock = manualClock(10_000);
    const counters = new Counters(limits, clock.now);
    counters.arrive(); // 1 in flight for 500 ms
    clock.advance(500);
    counters.arrive(); // 2 in flight for 1000 ms
    counters.admit();
    clock.advance(1000);
    counters.release();
    counters.depart(); // 1 in flight for 500 ms
    clock.advance(500);
    counters.depart();
    clock.advance(5000); // idle: must not dilute the average

    const stats = counters.snapshot({});
    expect(stats.activeMs).toBe(2000);
    expect(stats.avgInFlight).toBeCloseTo((500 + 2000 + 500) / 2000, 10);
    expect(stats.avgServing).toBeCloseTo(1000 / 2000, 10);
    expect(stats.peakInFlight).toBe(2);
    expect(stats.peakServing).toBe(1);
    expect(stats.inFlight).toBe(0);
    expect(stats.perSecond).toEqual([
      { t: 10, inFlight: 1.5, serving: 0.5, arrivals: 2, rateLimited: 0 },
      { t: 11, inFlight: 1.5, serving: 0.5, arrivals: 0, rateLimited: 0 },
    ]);
  });

  it('records every second a long request spans, and leaves idle seconds out', () => {
    const clock = manualClock(20_000);
    const counters = new Counters(limits, clock.now);
    counters.arrive();
    clock.advance(3000);
    counters.depart();
    clock.advance(10_250);
    counters.arrive();
    counters.limited('capacity');
    clock.advance(250);
    counters.depart();

    const { perSecond, avgInFlight, activeMs, rateLimited } = counters.snapshot({});
    expect(perSecond.map((s) => s.t)).toEqual([20, 21, 22, 33]);
    expect(perSecond.map((s) => s.inFlight)).toEqual([1, 1, 1, 0.5]);
    expect(perSecond[3]).toMatchObject({ arrivals: 1, rateLimited: 1 });
    expect(activeMs).toBe(13_500);
    expect(avgInFlight).toBeCloseTo(3250 / 13_500, 10);
    expect(rateLimited).toEqual({ capacity: 1, tpm: 0, directive: 0, global: 0 });
  });

  it('integrates up to the snapshot while requests are in flight', () => {
    const clock = manualClock(30_000);
    const counters = new Counters(limits, clock.now);
    counters.arrive();
    counters.arrive();
    clock.advance(400);
    const stats = counters.snapshot({});
    expect(stats.activeMs).toBe(400);
    expect(stats.avgInFlight).toBe(2);
    expect(stats.perSecond).toEqual([{ t: 30, inFlight: 2, serving: 0, arrivals: 2, rateLimited: 0 }]);
  });

  it('keeps only the most recent seconds', () => {
    const clock = manualClock(0);
    const counters = new Counters({ maxRequestTimes: 10, maxHistorySeconds: 3 }, clock.now);
    counters.arrive();
    clock.advance(10_000);
    counters.depart();
    expect(counters.snapshot({}).perSecond.map((s) => s.t)).toEqual([7, 8, 9]);
  });

  it('starts over on reset, leaving requests in flight on the old counters', () => {
    const clock = manualClock();
    const stats = new StatsRegistry(limits, clock.now);
    const before = stats.global;
    before.arrive();
    stats.reset();
    before.depart();
    const fresh = stats.snapshot();
    expect(fresh).toMatchObject({
      totalRequests: 0,
      inFlight: 0,
      activeMs: 0,
      avgInFlight: 0,
      perSecond: [],
    });
  });
});
