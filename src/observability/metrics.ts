import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchStatus } from '../database/entities/batch.entity';

/**
 * Every Prometheus metric Barge exports, in one place (docs/metrics.md is their catalogue).
 * One instance per process, built at start and injected where metrics are made. Labels never
 * carry a tenant or batch id (cardinality): per-tenant figures belong to the usage API.
 *
 * Gauges that mirror live state (limits, queues, circuits, batches by status) are computed
 * when Prometheus scrapes, by collect() callbacks reading the objects that own the state:
 * the code that changes the state pays nothing for them.
 */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600];

/** Circuit-breaker states as the gauge reports them. */
export const CIRCUIT_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** One upstream's live state in one gateway, read at scrape time. */
export interface UpstreamState {
  upstream: string;
  concurrencyLimit: number;
  inFlight: number;
  queueDepth: number;
  leaseShare: number;
  circuitState: number;
}

export type UpstreamStateSource = () => Iterable<UpstreamState>;

/** Batches by status (and the longest a non-terminal one has gone without progress), read at scrape time. */
export interface BatchCensus {
  byStatus: Partial<Record<BatchStatus, number>>;
  /** Seconds since the non-terminal batch that progressed least recently last progressed; 0 when none. */
  longestWithoutProgressSeconds: number;
}

const BATCH_STATUSES: readonly BatchStatus[] = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
];

/** A census this recent is reused (one query per scrape, however many gauges read it). */
const CENSUS_REUSE_MS = 1_000;

/** Distinct model names kept as label values; later ones count as "other" (models are user input). */
const MAX_MODEL_LABELS = 100;
const MAX_MODEL_LABEL_LENGTH = 100;

/** What a recorded request contributes to the request and token counters. */
export interface RecordedRequest {
  ok: boolean;
  /** The upstream that gave the final answer; null when none did (unreadable line, finalize's lines). */
  upstream?: string | null;
  inputTokens: number;
  outputTokens: number;
}

export interface MetricsOptions {
  /** Value of the `process` label on every series (api, worker). */
  process?: string;
  /** Node's process metrics (memory, CPU, event loop lag, GC) and the memory limits. */
  defaults?: boolean;
  /** Epoch ms (tests inject a clock). */
  now?: () => number;
}

export class Metrics {
  readonly registry: Registry;

  // Batches
  readonly batchTransitions: Counter<'status'>;
  readonly batches: Gauge<'status'>;
  readonly batchLongestWithoutProgress: Gauge;
  readonly validationSeconds: Histogram<'result'>;
  readonly chunkSeconds: Histogram<'end'>;
  readonly finalizeSeconds: Histogram<'status'>;
  readonly finalizeOldestRunning: Gauge;
  readonly reconciled: Counter<'action'>;

  // Requests
  readonly requests: Counter<'outcome' | 'endpoint' | 'upstream' | 'model'>;
  readonly tokens: Counter<'kind' | 'model'>;

  // Upstreams
  readonly upstreamSeconds: LightHistogram;
  readonly upstreamFirstByteSeconds: LightHistogram;
  readonly retries: Counter<'upstream' | 'reason'>;
  readonly overloads: Counter<'upstream' | 'status'>;
  readonly concurrencyLimit: Gauge<'upstream'>;
  readonly inFlight: Gauge<'upstream'>;
  readonly queueDepth: Gauge<'upstream'>;
  readonly leaseShare: Gauge<'upstream'>;
  readonly limiterWaitSeconds: LightHistogram;
  readonly circuitState: Gauge<'upstream'>;

  // Files and HTTP (API)
  readonly fileBytes: Counter<'direction'>;
  readonly httpSeconds: LightHistogram;

  private readonly now: () => number;
  private readonly upstreamSources = new Set<UpstreamStateSource>();
  private readonly upstreamInstruments = new Map<string, UpstreamInstruments>();
  private census: (() => Promise<BatchCensus>) | null = null;
  private lastCensus: { at: number; result: Promise<BatchCensus | null> } | null = null;
  private readonly finalizesRunning = new Map<number, number>();
  private nextFinalize = 0;
  private readonly models = new Set<string>();

  constructor(registry = new Registry(), options: MetricsOptions = {}) {
    this.registry = registry;
    this.now = options.now ?? Date.now;
    if (options.process) registry.setDefaultLabels({ process: options.process });
    if (options.defaults) {
      collectDefaultMetrics({ register: registry, prefix: 'barge_' });
      new Gauge({
        name: 'barge_memory_limit_bytes',
        help: "The memory this process may use: its container's (cgroup) limit, else the machine's memory.",
        registers: [registry],
        collect() {
          this.set(memoryLimitBytes());
        },
      });
      new Gauge({
        name: 'barge_heap_limit_bytes',
        help: "V8's heap size limit (past it the process dies of out-of-memory).",
        registers: [registry],
        collect() {
          this.set(getHeapStatistics().heap_size_limit);
        },
      });
    }
    const r = [registry];
    // collect() callbacks run with `this` bound to their gauge; they read this object's state.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metrics = this;

    this.batchTransitions = new Counter({
      name: 'barge_batch_transitions_total',
      help: 'Batches entering each status, counted by the process that made the transition.',
      labelNames: ['status'],
      registers: r,
    });
    this.batches = new Gauge({
      name: 'barge_batches',
      help: 'Batches by status, as Postgres has them (API only).',
      labelNames: ['status'],
      registers: r,
      async collect() {
        const census = await metrics.currentCensus();
        if (census)
          for (const status of BATCH_STATUSES) this.labels(status).set(census.byStatus[status] ?? 0);
      },
    });
    this.batchLongestWithoutProgress = new Gauge({
      name: 'barge_batch_longest_without_progress_seconds',
      help: 'How long the non-terminal batch that progressed least recently has gone without a status change or a new outcome (API only; 0: none).',
      registers: r,
      async collect() {
        const census = await metrics.currentCensus();
        if (census) this.set(census.longestWithoutProgressSeconds);
      },
    });
    this.validationSeconds = new Histogram({
      name: 'barge_validation_duration_seconds',
      help: 'Time to validate a batch input file, by result (ok, invalid: the file has errors, error: the attempt failed).',
      labelNames: ['result'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.chunkSeconds = new Histogram({
      name: 'barge_chunk_duration_seconds',
      help: 'Time a chunk activity attempt ran, by how it ended (done, drained, aborted, failed).',
      labelNames: ['end'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.finalizeSeconds = new Histogram({
      name: 'barge_finalize_duration_seconds',
      help: 'Time to finalize a batch (error lines for the unanswered, output files, the end), by final status (or error).',
      labelNames: ['status'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.finalizeOldestRunning = new Gauge({
      name: 'barge_finalize_oldest_running_seconds',
      help: 'How long the longest-running finalize in this worker has been running (0: none).',
      registers: r,
      collect() {
        let oldest = Number.POSITIVE_INFINITY;
        for (const startedAt of metrics.finalizesRunning.values()) oldest = Math.min(oldest, startedAt);
        this.set(Number.isFinite(oldest) ? Math.max(0, metrics.now() - oldest) / 1000 : 0);
      },
    });
    this.reconciled = new Counter({
      name: 'barge_reconciled_batches_total',
      help: 'Batches the reconciler acted on (started: a missing workflow; finalized: a workflow gone).',
      labelNames: ['action'],
      registers: r,
    });
    this.requests = new Counter({
      name: 'barge_requests_total',
      help: 'Requests given their final outcome (completed: a 2xx in the output file; failed: a line in the error file). Counted once, when recorded.',
      labelNames: ['outcome', 'endpoint', 'upstream', 'model'],
      registers: r,
    });
    this.tokens = new Counter({
      name: 'barge_tokens_total',
      help: 'Tokens of completed requests, as the upstream reported them (kind: input, output).',
      labelNames: ['kind', 'model'],
      registers: r,
    });
    this.upstreamSeconds = new LightHistogram({
      name: 'barge_upstream_request_duration_seconds',
      help: 'Duration of one attempt at an upstream, by HTTP status (or the no-answer code: upstream_timeout, upstream_connection_error, ...).',
      labelNames: ['upstream', 'endpoint', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.upstreamFirstByteSeconds = new LightHistogram({
      name: 'barge_upstream_time_to_first_byte_seconds',
      help: "Time from sending an attempt to the upstream's response headers.",
      labelNames: ['upstream', 'endpoint'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.retries = new Counter({
      name: 'barge_upstream_retries_total',
      help: 'Attempts retried, by reason (the HTTP status, or the no-answer code).',
      labelNames: ['upstream', 'reason'],
      registers: r,
    });
    this.overloads = new Counter({
      name: 'barge_upstream_overload_answers_total',
      help: 'Answers saying "too much" (429, 503).',
      labelNames: ['upstream', 'status'],
      registers: r,
    });
    const upstreamGauge = (name: string, help: string, pick: (s: UpstreamState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['upstream'],
        registers: r,
        collect() {
          this.reset();
          for (const source of metrics.upstreamSources) {
            for (const state of source()) this.labels(state.upstream).set(pick(state));
          }
        },
      });
    this.concurrencyLimit = upstreamGauge(
      'barge_upstream_concurrency_limit',
      "This worker's adaptive concurrency limit for the upstream.",
      (s) => s.concurrencyLimit,
    );
    this.inFlight = upstreamGauge(
      'barge_upstream_in_flight',
      'Calls in flight to the upstream from this worker.',
      (s) => s.inFlight,
    );
    this.queueDepth = upstreamGauge(
      'barge_upstream_queue_depth',
      'Requests waiting in this worker for an upstream slot.',
      (s) => s.queueDepth,
    );
    this.leaseShare = upstreamGauge(
      'barge_upstream_lease_share',
      "Slots of the upstream's maxConcurrency this worker holds a lease on now.",
      (s) => s.leaseShare,
    );
    this.circuitState = upstreamGauge(
      'barge_upstream_circuit_state',
      "The upstream's circuit breaker in this worker: 0 closed, 1 half-open, 2 open.",
      (s) => s.circuitState,
    );
    this.limiterWaitSeconds = new LightHistogram({
      name: 'barge_limiter_wait_seconds',
      help: 'Time a request waited for an upstream slot (concurrency and rate limits), when it got one.',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.fileBytes = new Counter({
      name: 'barge_file_bytes_total',
      help: 'File bytes received (uploaded) and sent (downloaded) by the API.',
      labelNames: ['direction'],
      registers: r,
    });
    this.httpSeconds = new LightHistogram({
      name: 'barge_http_request_duration_seconds',
      help: 'API requests, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
  }

  /** The exposition text of every metric (Prometheus text format). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Reports a gateway's upstreams in the upstream gauges until the returned function is called. */
  watchUpstreams(source: UpstreamStateSource): () => void {
    this.upstreamSources.add(source);
    return () => this.upstreamSources.delete(source);
  }

  /** Where the batch gauges come from (the API's query of Postgres). */
  watchBatches(census: () => Promise<BatchCensus>): void {
    this.census = census;
  }

  /** One census per scrape: both batch gauges read it (the registry collects them concurrently). */
  private currentCensus(): Promise<BatchCensus | null> {
    const census = this.census;
    if (!census) return Promise.resolve(null);
    const now = this.now();
    if (!this.lastCensus || now - this.lastCensus.at > CENSUS_REUSE_MS) {
      this.lastCensus = { at: now, result: census().catch(() => null) };
    }
    return this.lastCensus.result;
  }

  /** The upstream's instruments, label children built once. */
  upstream(name: string): UpstreamInstruments {
    let instruments = this.upstreamInstruments.get(name);
    if (!instruments) {
      instruments = new UpstreamInstruments(this, name);
      this.upstreamInstruments.set(name, instruments);
    }
    return instruments;
  }

  /** Counts requests just recorded (each exactly once) and their tokens. */
  recordedRequests(endpoint: string, model: string | null, requests: Iterable<RecordedRequest>): void {
    const modelLabel = this.modelLabel(model);
    // [completed, failed] by upstream: one counter increment per label set and flush.
    const tally = new Map<string, [number, number]>();
    let inputTokens = 0;
    let outputTokens = 0;
    for (const r of requests) {
      const upstream = r.upstream ?? 'none';
      let counts = tally.get(upstream);
      if (!counts) tally.set(upstream, (counts = [0, 0]));
      if (r.ok) {
        counts[0]++;
        inputTokens += r.inputTokens;
        outputTokens += r.outputTokens;
      } else {
        counts[1]++;
      }
    }
    for (const [upstream, [completed, failed]] of tally) {
      if (completed > 0) this.requests.labels('completed', endpoint, upstream, modelLabel).inc(completed);
      if (failed > 0) this.requests.labels('failed', endpoint, upstream, modelLabel).inc(failed);
    }
    if (inputTokens > 0) this.tokens.labels('input', modelLabel).inc(inputTokens);
    if (outputTokens > 0) this.tokens.labels('output', modelLabel).inc(outputTokens);
  }

  /** Counts requests finalize recorded as never answered (batch_cancelled, batch_expired, ...). */
  unansweredRecorded(endpoint: string, model: string | null, n: number): void {
    if (n > 0) this.requests.labels('failed', endpoint, 'none', this.modelLabel(model)).inc(n);
  }

  /** Counts a status transition the caller made (its conditional update changed the row). */
  transition(status: BatchStatus): void {
    this.batchTransitions.labels(status).inc();
  }

  /** Marks a finalize as running (for the oldest-running gauge); call the result when it ends. */
  finalizeStarted(): () => void {
    const id = this.nextFinalize++;
    this.finalizesRunning.set(id, this.now());
    return () => this.finalizesRunning.delete(id);
  }

  /** A model name as a label value: the first MAX_MODEL_LABELS names seen, then "other". */
  modelLabel(model: string | null): string {
    if (model === null || model === '') return 'none';
    if (this.models.has(model)) return model;
    if (this.models.size >= MAX_MODEL_LABELS || model.length > MAX_MODEL_LABEL_LENGTH) return 'other';
    this.models.add(model);
    return model;
  }
}

type CounterChild = ReturnType<Counter<string>['labels']>;

/**
 * One upstream's per-attempt instruments. Label children are built on first use and kept, so
 * an attempt costs a map lookup and an observe, not a label object per request.
 */
export class UpstreamInstruments {
  private readonly durations = new Map<string, HistogramSeries>();
  private readonly firstBytes = new Map<string, HistogramSeries>();
  private readonly retryReasons = new Map<string, CounterChild>();
  private readonly overloadStatuses = new Map<number, CounterChild>();
  private readonly wait: HistogramSeries;

  constructor(
    private readonly metrics: Metrics,
    readonly upstream: string,
  ) {
    this.wait = metrics.limiterWaitSeconds.labels(upstream);
  }

  /** One attempt: its status (HTTP, or the no-answer code), its duration and time to the headers. */
  attempt(endpoint: string, status: number | string, seconds: number, firstByteSeconds?: number): void {
    const key = `${endpoint} ${status}`;
    let duration = this.durations.get(key);
    if (!duration) {
      duration = this.metrics.upstreamSeconds.labels(this.upstream, endpoint, String(status));
      this.durations.set(key, duration);
    }
    duration.observe(seconds);
    if (firstByteSeconds !== undefined) {
      let firstByte = this.firstBytes.get(endpoint);
      if (!firstByte) {
        firstByte = this.metrics.upstreamFirstByteSeconds.labels(this.upstream, endpoint);
        this.firstBytes.set(endpoint, firstByte);
      }
      firstByte.observe(firstByteSeconds);
    }
    if (status === 429 || status === 503) {
      let overload = this.overloadStatuses.get(status);
      if (!overload) {
        overload = this.metrics.overloads.labels(this.upstream, String(status));
        this.overloadStatuses.set(status, overload);
      }
      overload.inc();
    }
  }

  retried(reason: number | string): void {
    const key = String(reason);
    let counter = this.retryReasons.get(key);
    if (!counter) {
      counter = this.metrics.retries.labels(this.upstream, key);
      this.retryReasons.set(key, counter);
    }
    counter.inc();
  }

  waited(seconds: number): void {
    this.wait.observe(seconds);
  }
}

/** One label set of a LightHistogram: per-bucket counts (made cumulative when scraped), sum, count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A histogram for the hot paths (every upstream attempt, every API request). prom-client's
 * Histogram validates and hashes the labels on every observe (about a microsecond for the
 * three observations of an attempt); here a label set's series is looked up once and an
 * observation is a bucket search and three additions. It registers as a prom-client metric,
 * so the registry's text format and JSON are the same as for any histogram.
 */
export class LightHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly string[];
  private readonly bounds: readonly number[];
  private readonly series = new Map<string, HistogramSeries>();

  constructor(options: {
    name: string;
    help: string;
    labelNames: readonly string[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    for (const registry of options.registers) registry.registerMetric(this as unknown as Histogram);
  }

  /** The series of these label values (in labelNames order); keep it to observe cheaply. */
  labels(...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name} takes labels ${this.labelNames.join(', ')}`);
    }
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (!series) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]]));
      series = new HistogramSeries(labels, this.bounds);
      this.series.set(key, series);
    }
    return series;
  }

  /** prom-client's Metric.get(): what the registry renders. */
  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.counts[i];
        const le = i < this.bounds.length ? this.bounds[i] : '+Inf';
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

/** The tighter of the cgroup memory limit (v2, then v1) and the machine's memory. */
function memoryLimitBytes(): number {
  const machine = totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const limit = Number(readFileSync(file, 'utf8').trim());
      // "max" (v2) or a huge number (v1) means no limit.
      if (Number.isFinite(limit) && limit > 0) return Math.min(limit, machine);
    } catch {
      // not this cgroup version, or not Linux
    }
  }
  return machine;
}
