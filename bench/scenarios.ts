/**
 * What `npm run bench` measures: the scenarios of issues 11 and 12, and, in one table, the
 * Barge settings each runs with. Sizes are at BENCH_SCALE=1; goals are reported, never
 * enforced (a missed goal is a finding, not a failure).
 */
import type { BatchCreateParams } from 'openai/resources/batches';

export type ScenarioId = 'sim' | 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'm1' | 'm2';

/** Upstream latency per request, set per line with `simulate.latency_ms` so every run sees the same draws. */
export type LatencyModel =
  { kind: 'fixed'; ms: number } | { kind: 'lognormal'; medianMs: number; sigma: number };

/** Shares of lines given a scripted failure (issue 11's mix), as `simulate` directives. */
export interface FaultMix {
  /** One 429 with this Retry-After, then success. */
  rateLimitedOnce: { share: number; retryAfterMs: number };
  /** Two 500s, then success. */
  serverErrorTwice: number;
  /** A 400 on every attempt: the line must end in the error file. */
  permanentBadRequest: number;
  /** One connection reset, then success. */
  resetOnce: number;
}

/** What each line asks for: the endpoint, and the body of line i (the workload adds its `simulate`). */
export interface RequestShape {
  endpoint: BatchCreateParams['endpoint'];
  body(i: number): Record<string, unknown>;
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  requests: number;
  /** The direct client's concurrency, and the concurrency in Barge's ideal time. */
  concurrency: number;
  latency: LatencyModel;
  /** Whether the same lines also run through the direct client (chat lines only). */
  direct: boolean;
  /** The lines' endpoint and bodies; absent, the short chat questions of the throughput scenarios. */
  request?: RequestShape;
  /** Runs a second Barge batch with this fault mix and compares it with the clean one. */
  faults?: FaultMix;
  /** The simulator's congestion model (its flags); the ideal time then uses its capacity. */
  congestion?: { capacity: number; slowdown: number };
}

/** Barge's configuration in one scenario: YAML-shaped, checked against src/config's schema before the run. */
export interface BargeSettings {
  /** `limits` of the bench's single upstream, the simulator. */
  upstreamLimits: Record<string, unknown>;
  /** Merged into the generated BARGE_CONFIG file: `batches`, `routing`, ... */
  config: Record<string, unknown>;
  /**
   * The worker's BARGE_WORKER_NODE_OPTIONS (its NODE_OPTIONS), as an operator sets it; else
   * BARGE_WORKER_NODE_OPTIONS from the environment, else the default heap cap.
   */
  workerNodeOptions?: string;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'a',
    title: '0 ms upstream',
    requests: 100_000,
    concurrency: 256,
    latency: { kind: 'fixed', ms: 0 },
    direct: true,
  },
  {
    id: 'b',
    title: '50 ms upstream, 256 in flight',
    requests: 50_000,
    concurrency: 256,
    latency: { kind: 'fixed', ms: 50 },
    direct: true,
  },
  {
    id: 'c',
    title: 'lognormal latency (median 500 ms, sigma 1), 256 in flight',
    requests: 20_000,
    concurrency: 256,
    latency: { kind: 'lognormal', medianMs: 500, sigma: 1 },
    direct: true,
  },
  {
    id: 'd',
    title: '2 s upstream, 1,000 in flight',
    requests: 50_000,
    concurrency: 1000,
    latency: { kind: 'fixed', ms: 2000 },
    direct: true,
  },
  {
    id: 'e',
    title: '300 ms upstream, fault mix against the same batch without faults',
    requests: 20_000,
    concurrency: 256,
    latency: { kind: 'fixed', ms: 300 },
    direct: true,
    faults: {
      rateLimitedOnce: { share: 0.1, retryAfterMs: 200 },
      serverErrorTwice: 0.1,
      permanentBadRequest: 0.05,
      resetOnce: 0.02,
    },
  },
  {
    id: 'f',
    title: 'simulator capacity 100 (queueing near it), Barge allowed 400',
    requests: 20_000,
    concurrency: 100,
    latency: { kind: 'fixed', ms: 300 },
    direct: false,
    congestion: { capacity: 100, slowdown: 0.5 },
  },
  {
    id: 'm1',
    title: 'chat requests of 1 MB each, 200 ms upstream (memory)',
    requests: 200,
    concurrency: 256,
    latency: { kind: 'fixed', ms: 200 },
    direct: false,
    request: {
      endpoint: '/v1/chat/completions',
      body: (i) => ({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Document ${i}. ${megabyteOfText()}` }],
      }),
    },
  },
  {
    id: 'm2',
    title: 'embeddings with 1 MB answers (7 inputs x 8192 dimensions), 200 ms upstream (memory)',
    requests: 200,
    concurrency: 256,
    latency: { kind: 'fixed', ms: 200 },
    direct: false,
    request: {
      endpoint: '/v1/embeddings',
      body: (i) => ({
        model: 'text-embedding-3-small',
        input: Array.from({ length: 7 }, (_, k) => `Passage ${k} of request ${i}.`),
        dimensions: 8192,
      }),
    },
  },
];

let megabyte: string | undefined;
/** About 1 MB of plain ASCII prose (nothing JSON must escape), built once. */
function megabyteOfText(): string {
  const sentence = 'The quick brown fox jumps over the lazy dog while the batch waits. ';
  megabyte ??= sentence.repeat(Math.ceil(1_000_000 / sentence.length)).slice(0, 1_000_000);
  return megabyte;
}

/**
 * Barge's settings per scenario, the one place to update when Barge's tunables change.
 * Every path here must exist in Barge's configuration schema: the bench refuses to run with
 * a setting the schema no longer has, rather than silently measuring the defaults.
 *
 * A batch's requests all wait in the gateway's fair queue, so the upstream's maxConcurrency
 * sets how many are in flight; batches.chunkWindow (16 chunks, at least) and maxChunkWindow
 * bound how many chunks feed it. Every scenario leaves them at their defaults, so each
 * measures what a user gets.
 */
export const BARGE_SETTINGS: Record<Exclude<ScenarioId, 'sim'>, BargeSettings> = {
  a: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
  b: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
  c: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
  d: { upstreamLimits: { maxConcurrency: 1000 }, config: {} },
  e: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
  f: { upstreamLimits: { maxConcurrency: 400 }, config: {} },
  // The defaults (batches.chunkMaxBytes, worker.maxChunkBytesInMemory, ...) are what is
  // measured, with the worker's heap capped as docs/operations.md says to run it: V8 otherwise
  // lets garbage grow the heap far past what is live (553 and 588 MiB uncapped, 2026-12-02).
  m1: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
  m2: { upstreamLimits: { maxConcurrency: 256 }, config: {} },
};

/** The simulator's own throughput (bench/simulator.bench.ts): requests at scale 1, and its clients. */
export const SIMULATOR_BENCH = { requests: 20_000, concurrency: 64 };

/** Goals from the issues, checked against the figures of a run. */
export const GOALS = {
  /** (a) end to end on this 2-core machine, simulator included. */
  minRequestsPerSecondAt0ms: 5000,
  /** (b), (c): Barge / direct. */
  maxOverDirect: { b: 1.1, c: 1.1 } as Partial<Record<ScenarioId, number>>,
  /** (d): Barge / ideal. */
  maxOverIdeal: { d: 1.05 } as Partial<Record<ScenarioId, number>>,
  /** (e): faulty / clean. */
  maxFaultSlowdown: 1.5,
  /** (f): sustained in-flight at the simulator, and share of its answers that were 429. */
  sustainedInFlight: { min: 80, max: 110 },
  max429Share: 0.05,
  /** (m1), (m2): peak RSS (VmHWM) of the worker, MiB (issue 11: "below 512 MB"). */
  maxWorkerRssMiB: { m1: 512, m2: 512 } as Partial<Record<ScenarioId, number>>,
};
