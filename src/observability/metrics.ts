import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric Barge exports, in one place (docs/metrics.md is their catalogue).
 * One instance per process, built at start and injected where metrics are made. Labels never
 * carry a tenant or batch id (cardinality): per-tenant figures belong to the usage API.
 */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600];

export class Metrics {
  readonly registry: Registry;

  // Batches
  readonly batchTransitions: Counter<'status'>;
  readonly validationSeconds: Histogram<'result'>;
  readonly chunkSeconds: Histogram<'end'>;
  readonly finalizeSeconds: Histogram<'status'>;
  readonly reconciled: Counter<'action'>;

  // Requests
  readonly requests: Counter<'outcome' | 'endpoint' | 'upstream' | 'model'>;
  readonly tokens: Counter<'kind' | 'model'>;

  // Upstreams
  readonly upstreamSeconds: Histogram<'upstream' | 'endpoint' | 'status'>;
  readonly upstreamFirstByteSeconds: Histogram<'upstream' | 'endpoint'>;
  readonly retries: Counter<'upstream' | 'reason'>;
  readonly overloads: Counter<'upstream' | 'status'>;
  readonly concurrencyLimit: Gauge<'upstream'>;
  readonly inFlight: Gauge<'upstream'>;
  readonly queueDepth: Gauge<'upstream'>;
  readonly leaseShare: Gauge<'upstream'>;
  readonly limiterWaitSeconds: Histogram<'upstream'>;
  readonly circuitState: Gauge<'upstream'>;

  // Files and HTTP (API)
  readonly fileBytes: Counter<'direction'>;
  readonly httpSeconds: Histogram<'method' | 'route' | 'status'>;

  constructor(registry = new Registry(), options: { process?: string; defaults?: boolean } = {}) {
    this.registry = registry;
    if (options.process) registry.setDefaultLabels({ process: options.process });
    if (options.defaults) collectDefaultMetrics({ register: registry, prefix: 'barge_' });
    const r = [registry];

    this.batchTransitions = new Counter({
      name: 'barge_batch_transitions_total',
      help: 'Batches entering each status.',
      labelNames: ['status'],
      registers: r,
    });
    this.validationSeconds = new Histogram({
      name: 'barge_validation_duration_seconds',
      help: 'Time to validate a batch input file, by result (ok, failed).',
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
      help: 'Time to finalize a batch (error lines for the unanswered, output files, the end), by final status.',
      labelNames: ['status'],
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.reconciled = new Counter({
      name: 'barge_reconciled_batches_total',
      help: 'Batches the reconciler acted on (started: a missing workflow; finalized: a workflow gone).',
      labelNames: ['action'],
      registers: r,
    });
    this.requests = new Counter({
      name: 'barge_requests_total',
      help: 'Requests given their final outcome (completed: a 2xx in the output file; failed: a line in the error file).',
      labelNames: ['outcome', 'endpoint', 'upstream', 'model'],
      registers: r,
    });
    this.tokens = new Counter({
      name: 'barge_tokens_total',
      help: 'Tokens of completed requests, as the upstream reported them (kind: input, output).',
      labelNames: ['kind', 'model'],
      registers: r,
    });
    this.upstreamSeconds = new Histogram({
      name: 'barge_upstream_request_duration_seconds',
      help: 'Duration of one attempt at an upstream, by HTTP status (or no_answer).',
      labelNames: ['upstream', 'endpoint', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.upstreamFirstByteSeconds = new Histogram({
      name: 'barge_upstream_time_to_first_byte_seconds',
      help: "Time from sending an attempt to the upstream's response headers.",
      labelNames: ['upstream', 'endpoint'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.retries = new Counter({
      name: 'barge_upstream_retries_total',
      help: 'Attempts retried, by reason (the status, connection_error, upstream_timeout).',
      labelNames: ['upstream', 'reason'],
      registers: r,
    });
    this.overloads = new Counter({
      name: 'barge_upstream_overload_answers_total',
      help: 'Answers saying "too much" (429, 503).',
      labelNames: ['upstream', 'status'],
      registers: r,
    });
    this.concurrencyLimit = new Gauge({
      name: 'barge_upstream_concurrency_limit',
      help: "This worker's adaptive concurrency limit for the upstream.",
      labelNames: ['upstream'],
      registers: r,
    });
    this.inFlight = new Gauge({
      name: 'barge_upstream_in_flight',
      help: 'Calls in flight to the upstream from this worker.',
      labelNames: ['upstream'],
      registers: r,
    });
    this.queueDepth = new Gauge({
      name: 'barge_upstream_queue_depth',
      help: 'Requests waiting in this worker for an upstream slot.',
      labelNames: ['upstream'],
      registers: r,
    });
    this.leaseShare = new Gauge({
      name: 'barge_upstream_lease_share',
      help: "Slots of the upstream's maxConcurrency this worker holds a lease on.",
      labelNames: ['upstream'],
      registers: r,
    });
    this.limiterWaitSeconds = new Histogram({
      name: 'barge_limiter_wait_seconds',
      help: 'Time a request waited for an upstream slot (concurrency and rate limits).',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.circuitState = new Gauge({
      name: 'barge_upstream_circuit_state',
      help: "The upstream's circuit breaker in this worker: 0 closed, 1 half-open, 2 open.",
      labelNames: ['upstream'],
      registers: r,
    });
    this.fileBytes = new Counter({
      name: 'barge_file_bytes_total',
      help: 'File bytes received (uploaded) and sent (downloaded) by the API.',
      labelNames: ['direction'],
      registers: r,
    });
    this.httpSeconds = new Histogram({
      name: 'barge_http_request_duration_seconds',
      help: 'API requests, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
  }
}
