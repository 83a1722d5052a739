import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '../../src/config/config';
import { Histogram, Registry } from 'prom-client';
import { LightHistogram, Metrics } from '../../src/observability/metrics';
import { HttpUpstreamGateway } from '../../src/upstreams/gateway';
import type { AttemptRequest, AttemptResponse, UpstreamTransport } from '../../src/upstreams/http-upstream';
import type { LimitStore } from '../../src/upstreams/limit-store';
import type { UpstreamCall } from '../../src/upstreams/upstream-gateway';
import { parseExposition, total, type Sample } from '../support/prometheus';

/**
 * The gateway's metrics, unit-tested: a scripted transport and an in-memory limit store (one
 * worker alone), so every attempt, retry and gauge is known exactly.
 */

/** One worker alone: it gets the whole limit. */
const soloStore: LimitStore = {
  leaseTransaction: (fn) => fn({ others: async () => [], put: async () => undefined }),
  releaseLeases: async () => undefined,
  ensureBucket: async () => undefined,
  take: async () => ({ requests: 0, tokens: 0, requestsLeft: 0, tokensLeft: 0 }),
};

function configOf(upstreams: unknown[], routing: object = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'barge-metrics-')), 'barge.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      upstreams,
      routing: { backoffBaseMs: 1, backoffMaxMs: 2, breakerCooldownMs: 60_000, ...routing },
    }),
  );
  return buildConfig({
    BARGE_CONFIG: file,
    BARGE_POSTGRES_URL: 'postgres://u:p@127.0.0.1:1/barge',
    BARGE_STORAGE_ENDPOINT: 'http://127.0.0.1:1',
    BARGE_STORAGE_ACCESS_KEY: 'ak',
    BARGE_STORAGE_SECRET_KEY: 'sk',
    BARGE_STORAGE_BUCKET: 'barge',
  });
}

const answer = (status: number, headers: Record<string, string> = {}): AttemptResponse => ({
  kind: 'response',
  status,
  headers,
  text: '{}',
  body: {},
  firstByteMs: 3,
});

/** Answers by request id: a list of answers per request, the last one repeated. */
class ScriptedTransport implements UpstreamTransport {
  readonly sent: string[] = [];
  private readonly held: (() => void)[] = [];
  hold = false;

  constructor(private readonly script: Record<string, (AttemptResponse | 'reset')[]>) {}

  async send(request: AttemptRequest): Promise<AttemptResponse> {
    const n = this.sent.filter((id) => id === request.requestId).length;
    this.sent.push(request.requestId);
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    const answers = this.script[request.requestId] ?? [answer(200)];
    const next = answers[Math.min(n, answers.length - 1)];
    return next === 'reset'
      ? { kind: 'no-answer', code: 'upstream_connection_error', message: 'reset' }
      : next;
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.held.splice(0)) resolve();
  }

  async close(): Promise<void> {}
}

let calls = 0;
function callOf(requestId: string, overrides: Partial<UpstreamCall> = {}): UpstreamCall {
  calls++;
  return {
    requestId,
    batchId: 'batch_test',
    tenantId: 'tenant',
    endpoint: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${calls}` }] },
    provider: null,
    deadline: Date.now() + 60_000,
    attemptsSoFar: 0,
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function samplesOf(metrics: Metrics): Promise<Sample[]> {
  return parseExposition(await metrics.scrape());
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!condition()) throw new Error(`not reached: ${what}`);
}

describe('upstream metrics', () => {
  it('count every attempt by status, every retry by reason, and 429/503 answers', async () => {
    const metrics = new Metrics();
    const transport = new ScriptedTransport({
      a: [answer(500), answer(500), answer(200)],
      b: [answer(429, { 'retry-after-ms': '1' }), answer(200)],
      c: ['reset', answer(503, { 'retry-after-ms': '1' }), answer(200)],
      d: [answer(400)],
    });
    const gateway = new HttpUpstreamGateway(
      configOf([{ name: 'u1', baseUrl: 'http://127.0.0.1:1/v1' }], { breakerThreshold: 100 }),
      { limitStore: soloStore, transport: () => transport, metrics, env: {} },
    );
    try {
      const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => gateway.call(callOf(id))));
      expect(results.map((r) => (r.kind === 'http' ? r.status : r.kind))).toEqual([200, 200, 200, 400]);

      const s = await samplesOf(metrics);
      const u1 = { upstream: 'u1' };
      expect(total(s, 'barge_upstream_retries_total', { ...u1, reason: '500' })).toBe(2);
      expect(total(s, 'barge_upstream_retries_total', { ...u1, reason: '429' })).toBe(1);
      expect(total(s, 'barge_upstream_retries_total', { ...u1, reason: '503' })).toBe(1);
      expect(total(s, 'barge_upstream_retries_total', { ...u1, reason: 'upstream_connection_error' })).toBe(
        1,
      );
      // Every retry is a failed attempt that is not the last: 9 attempts, 4 final.
      expect(total(s, 'barge_upstream_retries_total')).toBe(transport.sent.length - 4);

      const attempts = (status: string) =>
        total(s, 'barge_upstream_request_duration_seconds_count', { ...u1, status });
      expect(attempts('200')).toBe(3);
      expect(attempts('500')).toBe(2);
      expect(attempts('429')).toBe(1);
      expect(attempts('503')).toBe(1);
      expect(attempts('400')).toBe(1);
      expect(attempts('upstream_connection_error')).toBe(1);
      expect(total(s, 'barge_upstream_request_duration_seconds_count')).toBe(transport.sent.length);
      // Time to first byte: every attempt that got headers (not the reset one).
      expect(total(s, 'barge_upstream_time_to_first_byte_seconds_count', u1)).toBe(8);
      expect(total(s, 'barge_upstream_time_to_first_byte_seconds_sum', u1)).toBeCloseTo(8 * 0.003);

      expect(total(s, 'barge_upstream_overload_answers_total', { ...u1, status: '429' })).toBe(1);
      expect(total(s, 'barge_upstream_overload_answers_total', { ...u1, status: '503' })).toBe(1);
      // Every attempt waited for its slot once.
      expect(total(s, 'barge_limiter_wait_seconds_count', u1)).toBe(transport.sent.length);
    } finally {
      await gateway.close();
    }
  });

  it('report in-flight calls, queue depth, lease share and the adaptive limit while calls run', async () => {
    const metrics = new Metrics();
    const transport = new ScriptedTransport({});
    transport.hold = true;
    const gateway = new HttpUpstreamGateway(
      configOf([{ name: 'u2', baseUrl: 'http://127.0.0.1:1/v1', limits: { maxConcurrency: 2 } }]),
      { limitStore: soloStore, transport: () => transport, metrics, env: {} },
    );
    try {
      const running = ['x1', 'x2', 'x3', 'x4', 'x5'].map((id) => gateway.call(callOf(id)));
      await until(() => transport.sent.length === 2, 'two calls in flight');

      const during = await samplesOf(metrics);
      const u2 = { upstream: 'u2' };
      expect(total(during, 'barge_upstream_in_flight', u2)).toBe(2);
      expect(total(during, 'barge_upstream_queue_depth', u2)).toBe(3);
      expect(total(during, 'barge_upstream_lease_share', u2)).toBe(2);
      expect(total(during, 'barge_upstream_concurrency_limit', u2)).toBe(2);
      expect(total(during, 'barge_upstream_circuit_state', u2)).toBe(0);

      transport.release();
      await until(() => transport.sent.length === 5, 'the queue drained');
      transport.release();
      await Promise.all(running);
      const after = await samplesOf(metrics);
      expect(total(after, 'barge_upstream_in_flight', u2)).toBe(0);
      expect(total(after, 'barge_upstream_queue_depth', u2)).toBe(0);
    } finally {
      await gateway.close();
    }
    // A closed gateway's upstreams leave the gauges.
    expect((await samplesOf(metrics)).filter((s) => s.name === 'barge_upstream_in_flight')).toEqual([]);
  });

  it('show an open circuit as 2', async () => {
    const metrics = new Metrics();
    const transport = new ScriptedTransport({ down: ['reset'] });
    const gateway = new HttpUpstreamGateway(
      configOf([{ name: 'u3', baseUrl: 'http://127.0.0.1:1/v1' }], { breakerThreshold: 2, maxAttempts: 2 }),
      { limitStore: soloStore, transport: () => transport, metrics, env: {} },
    );
    try {
      // Only first attempts count toward the circuit's failure rate: two calls open it.
      const result = await gateway.call(callOf('down'));
      expect(result).toMatchObject({ kind: 'error', code: 'upstream_connection_error' });
      expect(total(await samplesOf(metrics), 'barge_upstream_circuit_state', { upstream: 'u3' })).toBe(0);
      await gateway.call(callOf('down'));
      const s = await samplesOf(metrics);
      expect(total(s, 'barge_upstream_circuit_state', { upstream: 'u3' })).toBe(2);
    } finally {
      await gateway.close();
    }
  });
});

describe('LightHistogram', () => {
  it("renders exactly what prom-client's Histogram renders for the same observations", async () => {
    const registry = new Registry();
    const buckets = [0.01, 0.1, 1, 10];
    const light = new LightHistogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: ['a', 'b'],
      buckets,
      registers: [registry],
    });
    const reference = new Registry();
    const heavy = new Histogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: ['a', 'b'],
      buckets,
      registers: [reference],
    });
    const values = [0, 0.01, 0.05, 0.1, 0.5, 3, 10, 11, 1e9];
    for (const v of values) {
      light.labels('p', 'q').observe(v);
      heavy.labels('p', 'q').observe(v);
    }
    light.labels('r', 's').observe(2);
    heavy.labels('r', 's').observe(2);
    expect(await registry.metrics()).toBe(await reference.metrics());
    expect(total(parseExposition(await registry.metrics()), 'x_seconds_count')).toBe(values.length + 1);
  });
});
