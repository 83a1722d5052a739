import { latencySampler, mulberry32 } from '../../src/simulator/latency';
import {
  DEFAULT_OPTIONS,
  OptionError,
  parseCli,
  parseLatency,
  resolveOptions,
} from '../../src/simulator/options';
import { embeddingVector } from '../../src/simulator/responses';
import { AttemptTracker, StatsRegistry } from '../../src/simulator/stats';

const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const result = parseCli(argv, env);
  if (result.kind !== 'run') throw new Error('expected options');
  return result.options;
};

/** Asserts that parsing fails with an OptionError naming `option`. */
const expectBad = (option: string, argv: string[], env: NodeJS.ProcessEnv = {}): void => {
  let caught: unknown;
  try {
    parseCli(argv, env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(OptionError);
  expect((caught as OptionError).option).toBe(option);
  expect((caught as OptionError).message).toContain(option);
};

describe('simulator options', () => {
  it('defaults to 127.0.0.1:8100, no latency and no faults', () => {
    expect(run([])).toEqual(DEFAULT_OPTIONS);
    expect(DEFAULT_OPTIONS).toMatchObject({
      host: '127.0.0.1',
      port: 8100,
      latency: { kind: 'fixed', ms: 0 },
      errorRate: 0,
      capacity: 0,
      capacityTpm: 0,
      capacityRetryAfterMs: 200,
      capacitySlowdown: 0,
    });
  });

  it('reads flags in both spellings, and env, with flags winning', () => {
    expect(parseCli(['--capacity=100', '--capacity-slowdown', '0.5'], { SIM_CAPACITY: '7' })).toEqual({
      kind: 'run',
      options: { ...DEFAULT_OPTIONS, capacity: 100, capacitySlowdown: 0.5 },
    });
    expect(
      run([], {
        SIM_CAPACITY: '8',
        SIM_CAPACITY_TPM: '60000',
        SIM_CAPACITY_RETRY_AFTER_MS: '50',
        SIM_CAPACITY_SLOWDOWN: '2',
      }),
    ).toMatchObject({ capacity: 8, capacityTpm: 60000, capacityRetryAfterMs: 50, capacitySlowdown: 2 });
    const options = run(['--port', '0', '--error-rate=0.25', '--latency', 'uniform:10,200', '--seed', '9'], {
      SIM_PORT: '9000',
      SIM_HOST: '0.0.0.0',
      SIM_RATE_LIMIT_RATE: '0.5',
      SIM_RETRY_AFTER_MS: '2000',
      SIM_HANG_RATE: '0.1',
    });
    expect(options).toMatchObject({
      host: '0.0.0.0',
      port: 0,
      errorRate: 0.25,
      rateLimitRate: 0.5,
      hangRate: 0.1,
      retryAfterMs: 2000,
      seed: 9,
      latency: { kind: 'uniform', minMs: 10, maxMs: 200 },
    });
  });

  it('parses the three latency distributions', () => {
    expect(parseLatency('fixed:50')).toEqual({ kind: 'fixed', ms: 50 });
    expect(parseLatency('25')).toEqual({ kind: 'fixed', ms: 25 });
    expect(parseLatency('uniform:10,200')).toEqual({ kind: 'uniform', minMs: 10, maxMs: 200 });
    expect(parseLatency('lognormal:100,0.5')).toEqual({ kind: 'lognormal', medianMs: 100, sigma: 0.5 });
  });

  it('rejects bad options, naming the flag or variable', () => {
    expectBad('--error-rate', ['--error-rate', '1.5']);
    expectBad('--error-rate', ['--error-rate', 'lots']);
    expectBad('--port', ['--port', '70000']);
    expectBad('--port', ['--port', '']);
    expectBad('--latency', ['--latency', 'gaussian:1,2']);
    expectBad('--latency', ['--latency', 'uniform:200,10']);
    expectBad('--latency', ['--latency', 'fixed:1,2']);
    expectBad('--retry-after-ms', ['--retry-after-ms']);
    expectBad('--bogus', ['--bogus', '1']);
    expectBad('SIM_RESET_RATE', [], { SIM_RESET_RATE: '-0.1' });
    expectBad('--seed', ['--seed', '1.5']);
    expectBad('--port', ['--port', ' 1']);
    expectBad('--latency', ['--latency=lognormal:100,11']);
    expectBad('--capacity', ['--capacity', '-3']);
    expectBad('--capacity', ['--capacity', '2.5']);
    expectBad('SIM_CAPACITY_TPM', [], { SIM_CAPACITY_TPM: 'many' });
    expectBad('--capacity-slowdown', ['--capacity-slowdown', '1']); // no capacity to slow down towards
    expectBad('--help', ['--help=yes']);
    expectBad('stray', ['stray']);
  });

  it('names programmatic options by their property', () => {
    expect(() => resolveOptions({ port: Number.NaN })).toThrow('invalid option port: not a number');
    expect(() => resolveOptions({ latency: { kind: 'uniform', minMs: 5, maxMs: 1 } })).toThrow(
      /invalid option latency: .*below its minimum/,
    );
    expect(() => resolveOptions({ capacitySlowdown: 1 })).toThrow(/capacitySlowdown/);
    expect(resolveOptions({ capacity: 4, capacitySlowdown: 1 })).toMatchObject({
      capacity: 4,
      capacitySlowdown: 1,
    });
  });

  it('rejects fault rates adding up to more than 1, naming the rates set', () => {
    expect(() => resolveOptions({ errorRate: 0.6, hangRate: 0.6 })).toThrow(/at most 1/);
    expectBad('--error-rate/SIM_HANG_RATE', ['--error-rate', '0.6'], { SIM_HANG_RATE: '0.6' });
    expect(resolveOptions({ errorRate: 0.5, hangRate: 0.5 }).hangRate).toBe(0.5);
  });

  it('recognises --help', () => {
    expect(parseCli(['--port', '1', '--help'])).toEqual({ kind: 'help' });
    expect(parseCli(['-h', '--bogus'])).toEqual({ kind: 'help' });
  });
});

describe('simulator latency', () => {
  it('reproduces the same sequence from the same seed', () => {
    const a = mulberry32(123);
    const b = mulberry32(123);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('draws uniform delays within bounds and lognormal delays around the median', () => {
    const uniform = latencySampler({ kind: 'uniform', minMs: 10, maxMs: 20 }, mulberry32(1));
    for (let i = 0; i < 1000; i++) {
      const ms = uniform();
      expect(ms).toBeGreaterThanOrEqual(10);
      expect(ms).toBeLessThanOrEqual(20);
    }
    const lognormal = latencySampler({ kind: 'lognormal', medianMs: 100, sigma: 0.5 }, mulberry32(2));
    const draws = Array.from({ length: 5001 }, lognormal).sort((x, y) => x - y);
    expect(draws[2500]).toBeGreaterThan(90);
    expect(draws[2500]).toBeLessThan(110);
    expect(latencySampler({ kind: 'fixed', ms: 7 }, mulberry32(3))()).toBe(7);
  });
});

describe('simulator bookkeeping', () => {
  it('forgets the least recently used request identities beyond its capacity', () => {
    const tracker = new AttemptTracker(2);
    expect(tracker.next('a')).toBe(1);
    expect(tracker.next('b')).toBe(1);
    expect(tracker.next('a')).toBe(2);
    expect(tracker.next('c')).toBe(1); // evicts b, the least recently used
    expect(tracker.size).toBe(2);
    expect(tracker.next('a')).toBe(3);
    expect(tracker.next('b')).toBe(1);
  });

  it('keeps only the most recent arrival times', () => {
    let t = 0;
    const stats = new StatsRegistry({ maxRequestTimes: 3, maxHistorySeconds: 10 }, () => t);
    for (t = 1; t <= 5; t++) {
      stats.global.arrive();
      stats.global.depart();
    }
    expect(stats.snapshot().requestTimes).toEqual([3, 4, 5]);
    expect(stats.snapshot().totalRequests).toBe(5);
  });

  it('builds unit embedding vectors that depend on model and text', () => {
    const v = embeddingVector('m', 'hello', 32);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(embeddingVector('m', 'hello', 32)).toEqual(v);
    expect(embeddingVector('m2', 'hello', 32)).not.toEqual(v);
  });
});
