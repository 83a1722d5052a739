import { buildConfig } from '../../src/config/config';
import { AdaptiveConcurrency } from '../../src/upstreams/adaptive-concurrency';
import { mulberry32 } from '../../src/simulator/latency';
import { CircuitBreaker, type BreakerSettings } from '../../src/upstreams/circuit-breaker';
import type { Clock } from '../../src/upstreams/clock';
import { retryAfterMs, RetryPolicy, verdictFor } from '../../src/upstreams/retry-policy';
import {
  estimateTokens,
  MAX_REPORTED_TOKENS,
  reportedTokens,
  tokenCount,
} from '../../src/upstreams/token-estimate';
import { configWith } from './support';

class FakeClock implements Clock {
  constructor(public time = 1_000_000) {}
  now(): number {
    return this.time;
  }
}

describe('retry policy', () => {
  it('retries 408, 409, 429 and 5xx; other answers are final; x-should-retry wins', () => {
    expect([200, 201].map((s) => verdictFor(s, undefined))).toEqual(['success', 'success']);
    expect([408, 409, 429, 500, 502, 503, 504].map((s) => verdictFor(s, undefined))).toEqual(
      Array(7).fill('retry'),
    );
    expect([400, 401, 403, 404, 413, 422].map((s) => verdictFor(s, undefined))).toEqual(
      Array(6).fill('final'),
    );
    expect(verdictFor(409, 'false')).toBe('final');
    expect(verdictFor(400, 'true')).toBe('retry');
    expect(verdictFor(200, 'true')).toBe('success');
  });

  it('reads retry-after-ms, retry-after seconds and retry-after dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '1' }, now)).toBe(250);
    expect(retryAfterMs({ 'retry-after': '2' }, now)).toBe(2000);
    expect(retryAfterMs({ 'retry-after': '0.5' }, now)).toBe(500);
    expect(retryAfterMs({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }, now)).toBe(3000);
    expect(retryAfterMs({ 'retry-after': 'Tue, 31 Dec 2024 00:00:00 GMT' }, now)).toBe(0);
    expect(retryAfterMs({ 'retry-after': 'soon' }, now)).toBeNull();
    expect(retryAfterMs({}, now)).toBeNull();
  });

  it('backs off exponentially with full jitter, capped, and never below Retry-After (itself capped)', () => {
    const routing = configWith({
      routing: { backoffBaseMs: 100, backoffMaxMs: 1000, retryAfterMaxMs: 5000 },
    }).routing;
    const high = new RetryPolicy(routing, () => 0.999999);
    expect([1, 2, 3, 4, 5, 40].map((n) => high.delayMs(n, null))).toEqual([99, 199, 399, 799, 999, 999]);
    const low = new RetryPolicy(routing, () => 0);
    expect(low.delayMs(3, null)).toBe(0);
    expect(low.delayMs(3, 700)).toBe(700);
    expect(high.delayMs(1, 50)).toBe(99);
    expect(low.delayMs(1, 60_000)).toBe(5000);
  });
});

describe('circuit breaker', () => {
  /** The configuration's defaults, with overrides. */
  const settings = (overrides: Partial<BreakerSettings> = {}): BreakerSettings => {
    const { breakerThreshold, breakerFailureRate, breakerWindow, breakerCooldownMs } = buildConfig({
      BARGE_POSTGRES_URL: 'postgres://u:p@db:5432/barge',
      BARGE_STORAGE_ENDPOINT: 'http://minio:9000',
      BARGE_STORAGE_ACCESS_KEY: 'ak',
      BARGE_STORAGE_SECRET_KEY: 'sk',
      BARGE_STORAGE_BUCKET: 'barge',
    }).routing;
    return {
      threshold: breakerThreshold,
      failureRate: breakerFailureRate,
      window: breakerWindow,
      cooldownMs: breakerCooldownMs,
      ...overrides,
    };
  };

  it('opens once enough recent attempts failed, half-opens for one probe after the cool-down, and closes on its success', () => {
    const clock = new FakeClock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker(settings({ threshold: 3, cooldownMs: 1000 }), clock, (state) =>
      changes.push(state),
    );
    const fail = (): void => breaker.record(breaker.tryPass()!, 'unhealthy');
    const succeed = (): void => breaker.record(breaker.tryPass()!, 'healthy');

    for (let i = 0; i < 4; i++) succeed();
    fail();
    fail();
    succeed();
    // Three failures, but among eight attempts: under half.
    fail();
    expect(breaker.state).toBe('closed');
    fail(); // four of nine
    expect(breaker.state).toBe('closed');
    fail(); // five of ten: half
    expect(breaker.state).toBe('open');
    expect(breaker.tryPass()).toBeNull();
    expect(breaker.retryAt()).toBe(clock.time + 1000);

    clock.time += 1000;
    expect(breaker.state).toBe('half-open');
    const probe = breaker.tryPass()!;
    expect(probe.probe).toBe(true);
    expect(breaker.tryPass()).toBeNull(); // one probe at a time
    expect(breaker.available()).toBe(false);
    breaker.record(probe, 'unhealthy');
    expect(breaker.state).toBe('open');

    clock.time += 1000;
    const second = breaker.tryPass()!;
    breaker.record(second, 'unknown'); // an aborted probe decides nothing
    expect(breaker.state).toBe('half-open');
    breaker.record(breaker.tryPass()!, 'healthy');
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['open', 'closed']);
  });

  it('opens on an upstream that is down, not on a share of failing requests', () => {
    const clock = new FakeClock();
    const down = new CircuitBreaker(settings(), clock);
    for (let i = 0; i < 9; i++) down.record(down.tryPass()!, 'unhealthy');
    expect(down.state).toBe('closed'); // fewer than the threshold of 10
    down.record(down.tryPass()!, 'unhealthy');
    expect(down.state).toBe('open');

    // After a full window of successes, the upstream goes down: half the window must fail.
    const wentDown = new CircuitBreaker(settings(), clock);
    for (let i = 0; i < 100; i++) wentDown.record(wentDown.tryPass()!, 'healthy');
    let failed = 0;
    while (wentDown.state === 'closed' && failed < 100) {
      wentDown.record(wentDown.tryPass()!, 'unhealthy');
      failed++;
    }
    expect(failed).toBe(50);

    // Mostly failing among recent attempts opens it too, even with successes in between.
    const flaky = new CircuitBreaker(settings({ threshold: 5 }), clock);
    let attempts = 0;
    while (flaky.state === 'closed' && attempts < 20) {
      flaky.record(flaky.tryPass()!, attempts++ % 3 === 0 ? 'healthy' : 'unhealthy');
    }
    expect(flaky.state).toBe('open');
    expect(attempts).toBe(8); // five failures among eight
  });

  it('does not open by chance on a steady 12% of failures, where a window of 20 did', () => {
    /** How often the circuit opens over a million first attempts, 12% of them failing at random. */
    const opensOnNoise = (s: BreakerSettings): number => {
      const random = mulberry32(2026);
      const clock = new FakeClock();
      let opens = 0;
      const breaker = new CircuitBreaker(s, clock, (state) => {
        if (state === 'open') opens++;
      });
      for (let i = 0; i < 1_000_000; i++) {
        // Open: wait out the cool-down; the probe then passes like any attempt.
        if (breaker.state === 'open') clock.time += s.cooldownMs;
        breaker.record(breaker.tryPass()!, random() < 0.12 ? 'unhealthy' : 'healthy');
      }
      return opens;
    };
    expect(opensOnNoise(settings())).toBe(0);
    // The previous defaults, for contrast: this test tells them apart.
    expect(opensOnNoise(settings({ threshold: 5, window: 20 }))).toBeGreaterThan(2);
  });

  it('leaves retries out of the failure rate: the requests that failed already are no news', () => {
    const breaker = new CircuitBreaker(settings({ threshold: 5 }), new FakeClock());
    // The tail of a batch: only requests that failed before are left, and they fail again.
    for (let i = 0; i < 50; i++) breaker.record(breaker.tryPass()!, 'unhealthy', false);
    expect(breaker.state).toBe('closed');
  });

  it('ignores answers to requests let through before the circuit opened', () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker(settings({ threshold: 1 }), clock);
    const early = breaker.tryPass()!;
    breaker.record(breaker.tryPass()!, 'unhealthy');
    expect(breaker.state).toBe('open');
    breaker.record(early, 'healthy');
    expect(breaker.state).toBe('open');
  });
});

describe('adaptive concurrency', () => {
  /** Drives the controller with answers drawn per window; returns the limit after each window. */
  function drive(
    pacing: AdaptiveConcurrency,
    windows: number,
    overloadShare: (limit: number) => number,
    seed = 7,
  ): number[] {
    let state = seed;
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const limits: number[] = [];
    for (let w = 0; w < windows; w++) {
      const n = Math.max(40, pacing.limit); // the controller's window
      const share = overloadShare(pacing.limit);
      for (let i = 0; i < n; i++) pacing.record(random() < share ? 'overload' : 'success', 100);
      limits.push(pacing.limit);
    }
    return limits;
  }

  it('does not collapse under a load-independent share of 429s', () => {
    const pacing = new AdaptiveConcurrency({ max: 256 });
    const limits = drive(pacing, 400, () => 0.1);
    // AIMD halving on each 429 would sit near 4; here the floor learns the noise, and only an
    // occasional probe (one cut, undone a window later) costs a little.
    const later = limits.slice(20);
    expect(later.reduce((a, b) => a + b, 0) / later.length).toBeGreaterThan(0.95 * 256);
    expect(Math.min(...later)).toBeGreaterThanOrEqual(128);
    expect(pacing.noiseFloor).toBeGreaterThan(0.02);
  });

  it('finds a capacity above which 429s grow with concurrency, and stays just below it', () => {
    const capacity = 100;
    const pacing = new AdaptiveConcurrency({ max: 400 });
    // Everything above the capacity is refused: the 429 share grows with the limit.
    const share = (limit: number) => Math.max(0, (limit - capacity) / limit);
    const limits = drive(pacing, 600, share).slice(100);
    const mean = limits.reduce((a, b) => a + b, 0) / limits.length;
    expect(mean).toBeGreaterThan(0.8 * capacity);
    expect(mean).toBeLessThan(1.1 * capacity);
    const overloadShare = limits.reduce((sum, l) => sum + share(l), 0) / limits.length;
    expect(overloadShare).toBeLessThan(0.05);
  });

  it('undoes a growth that bought latency but no throughput, and ignores a slower workload', () => {
    let now = 0;
    const clock = () => now;
    // Answers of a window arrive spread over `seconds`.
    const window = (pacing: AdaptiveConcurrency, latencyMs: number, seconds: number) => {
      const n = Math.max(40, pacing.limit);
      for (let i = 0; i < n; i++) {
        now += (seconds * 1000) / n;
        pacing.record('success', latencyMs);
      }
    };

    // A workload that gets slower (longer generations) at the same concurrency: no cut.
    const slower = new AdaptiveConcurrency({ max: 64 }, clock);
    window(slower, 400, 1);
    window(slower, 2_000, 5);
    window(slower, 8_000, 20);
    expect([slower.limit, slower.decreases]).toEqual([64, 0]);

    // Queueing: after a growth, answers come no faster, each taking longer: undone.
    const queueing = new AdaptiveConcurrency({ max: 64 }, clock);
    for (let i = 0; i < 64; i++) queueing.record('overload', 0); // all refused: cut to half
    expect(queueing.limit).toBe(32);
    window(queueing, 1_000, 1); // clean: grows by a quarter
    expect(queueing.limit).toBe(40);
    window(queueing, 1_600, 1); // the same 40 answers a second, 60% slower
    expect(queueing.limit).toBe(32);
    expect(queueing.decreases).toBe(2);
  });

  it('grows back fast once the capacity comes back', () => {
    const pacing = new AdaptiveConcurrency({ max: 256 });
    let capacity = 5;
    const share = (limit: number) => Math.max(0, (limit - capacity) / limit);
    drive(pacing, 100, share);
    expect(pacing.limit).toBeLessThan(10);
    capacity = 1_000;
    const back = drive(pacing, 60, share);
    // Well above the last overload it grows by a quarter per window: 256 within dozens of windows.
    expect(back.indexOf(256)).toBeGreaterThan(-1);
    expect(back.indexOf(256)).toBeLessThan(40);
  });

  it('treats a share of 429s that a cut does not lower as not its own', () => {
    const pacing = new AdaptiveConcurrency({ max: 64 });
    const limits = drive(pacing, 50, () => 0.3);
    expect(limits[limits.length - 1]).toBe(64);
    expect(pacing.noiseFloor).toBeGreaterThan(0.2);
  });

  it('never goes below its minimum nor above its maximum', () => {
    const pacing = new AdaptiveConcurrency({ max: 16, min: 2 });
    // Capacity 1: every limit above it is overloaded.
    expect(Math.min(...drive(pacing, 200, (limit) => (limit - 1) / limit))).toBe(2);
    expect(Math.max(...drive(pacing, 100, () => 0))).toBe(16);
  });
});

describe('token estimates', () => {
  it('counts about four characters a token of the input, plus the output budget', () => {
    const chat = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'x'.repeat(40) },
        { role: 'user', content: [{ type: 'text', text: 'y'.repeat(30) }] },
      ],
      max_completion_tokens: 100,
    };
    // 'system' + 40 + 'user' + 'text' + 30 = 84 characters: 21 tokens.
    expect(estimateTokens(chat)).toBe(121);
    expect(estimateTokens({ model: 'm', prompt: 'a'.repeat(8), max_tokens: 10, n: 3 })).toBe(32);
    expect(estimateTokens({ model: 'm', prompt: [1, 2, 3] })).toBe(3);
    expect(estimateTokens({ model: 'm', input: ['abcd', 'efgh'] })).toBe(2);
    expect(estimateTokens({ model: 'm', input: 'hi', instructions: 'be terse', max_output_tokens: 5 })).toBe(
      8,
    );
    expect(estimateTokens({ model: 'm' })).toBe(1);
  });

  it('reads the reported usage of every endpoint shape', () => {
    expect(reportedTokens({ usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })).toBe(15);
    expect(reportedTokens({ usage: { input_tokens: 7, output_tokens: 3 } })).toBe(10);
    expect(reportedTokens({ usage: { prompt_tokens: 4 } })).toBe(4);
    expect(reportedTokens({ results: [] })).toBeNull();
    expect(reportedTokens('text')).toBeNull();
  });

  it('believes no count that is not a whole number from 0 to MAX_REPORTED_TOKENS', () => {
    for (const bad of [1.5, -3, 1e300, Infinity, NaN, 2 ** 60, MAX_REPORTED_TOKENS + 1, '12', null, {}]) {
      expect(tokenCount(bad)).toBeNull();
      expect(reportedTokens({ usage: { total_tokens: bad } })).toBeNull();
      // A bad total does not hide good parts; bad parts count as none.
      expect(reportedTokens({ usage: { total_tokens: bad, prompt_tokens: 4, completion_tokens: bad } })).toBe(
        4,
      );
    }
    expect(tokenCount(0)).toBe(0);
    expect(tokenCount(MAX_REPORTED_TOKENS)).toBe(MAX_REPORTED_TOKENS);
  });
});
