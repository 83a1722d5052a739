import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { createTenant, openaiFor } from '../support/api';
import { chatLine, results, uploadJsonl, waitForStatus, type InputLine } from '../support/batches';
import { declaredFamilies, parseExposition, total, type Sample } from '../support/prometheus';
import { freePort, ROOT, startProcess, stopProcess, waitFor } from '../support/stack';

/**
 * Metrics and logs of a real batch with injected faults, read from the outside: an API and a
 * worker of this test's own (own task queues, the worker's metrics on a free port), against an
 * in-process simulator whose `simulate` directives script every failure, so the counters'
 * right values are known in advance and cross-checked with what the simulator saw.
 */

const N = 60;
/** Lines by the fault they script. */
const RETRIED_500 = 10; // fail twice with 500, then answer
const RETRIED_429 = 10; // fail once with 429, then answer
const EXHAUSTED_500 = 5; // 500 on every attempt: failed after maxAttempts
const FINAL_400 = 3; // 400: failed at once, never retried
const SLOW = 2; // answer after SLOW_MS: keeps the batch in progress for the "during" scrape
const SLOW_MS = 6_000;
const MAX_ATTEMPTS = 3;

const FAILED = EXHAUSTED_500 + FINAL_400;
const COMPLETED = N - FAILED;

function inputLines(): InputLine[] {
  const lines: InputLine[] = [];
  const add = (count: number, simulate?: Record<string, unknown>) => {
    for (let i = 0; i < count; i++) {
      const n = lines.length;
      lines.push(chatLine(`obs-${n}`, simulate ? { simulate } : {}));
    }
  };
  add(RETRIED_500, { fail_times: 2, fail_status: 500 });
  add(RETRIED_429, { fail_times: 1, fail_status: 429, retry_after_ms: 5 });
  add(EXHAUSTED_500, { fail_times: 1e9, fail_status: 500 });
  add(FINAL_400, { fail_times: 1e9, fail_status: 400 });
  add(N - lines.length - SLOW);
  add(SLOW, { latency_ms: SLOW_MS });
  return lines;
}

/** A process's stdout as lines, kept apart from stderr (stdout must be JSON lines only). */
function capture(child: ChildProcess): { stdout: () => string[]; stderr: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return { stdout: () => out.split('\n').filter((l) => l.trim() !== ''), stderr: () => err };
}

function parseLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
  });
}

describe('observability of a batch with injected faults', () => {
  const upstreamKey = `sk-upstream-${randomBytes(16).toString('hex')}`;
  let sim: SimulatorHandle;
  let worker: ChildProcess;
  let api: ChildProcess;
  let workerLogs: ReturnType<typeof capture>;
  let apiLogs: ReturnType<typeof capture>;
  let workerMetrics: string;
  let client: OpenAI;
  let tenant: { tenantId: string; key: string };
  let batch: Batch;
  let during: { worker: Sample[]; status: string };
  let after: Sample[];
  let afterText: string;
  let apiUrl: string;
  let inputBytes: number;
  let createRequestId: string;
  let echoedRequestId: string;
  const bogusKey = `sk-barge-${randomBytes(24).toString('hex')}`;
  const CLIENT_ID = 'client-42_retry:1/a=b+c.d';

  beforeAll(async () => {
    sim = await startSimulator({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'barge-obs-'));
    const configFile = join(dir, 'barge.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        upstreams: [
          { name: 'obs-sim', baseUrl: `${sim.url}/v1`, apiKeyEnv: 'OBS_UPSTREAM_KEY', models: ['*'] },
        ],
        // Fast retries, and no circuit breaking: every scripted failure is retried as scripted.
        routing: { maxAttempts: MAX_ATTEMPTS, backoffBaseMs: 10, backoffMaxMs: 50, breakerThreshold: 1000 },
      }),
    );
    const metricsPort = await freePort();
    const env = {
      BARGE_CONFIG: configFile,
      BARGE_TEMPORAL_TASK_QUEUE: `obs-${process.pid}`,
      BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `obs-upstream-${process.pid}`,
      BARGE_WORKER_METRICS_PORT: String(metricsPort),
      BARGE_LOG_LEVEL: 'debug',
      OBS_UPSTREAM_KEY: upstreamKey,
    };
    workerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
    worker = startProcess('src/worker.js', env);
    workerLogs = capture(worker);
    const apiPort = await freePort();
    api = startProcess('src/main.js', { ...env, BARGE_API_PORT: String(apiPort) });
    apiLogs = capture(api);
    apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor('the api', async () => (await fetch(`${apiUrl}/readyz`)).ok);
    tenant = await createTenant(`obs-${Date.now().toString(36)}`);
    client = openaiFor(tenant.key, { baseUrl: apiUrl });
    await waitFor('the worker metrics port', async () => (await fetch(workerMetrics)).ok);

    const file = await uploadJsonl(client, inputLines());
    inputBytes = file.bytes;
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    createRequestId = created._request_id!;
    // During: every request but the slow ones is recorded, the slow ones are in flight.
    const partial = await waitFor(
      'all but the slow requests recorded',
      async () => {
        const samples = parseExposition(await (await fetch(workerMetrics)).text());
        return total(samples, 'barge_requests_total') >= N - SLOW ? samples : undefined;
      },
      SLOW_MS + 30_000,
    );
    during = { worker: partial, status: (await client.batches.retrieve(created.id)).status };
    batch = await waitForStatus(client, created.id, ['completed', 'failed'], 90_000);
    afterText = await (await fetch(workerMetrics)).text();
    after = parseExposition(afterText);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([worker && stopProcess(worker), api && stopProcess(api)]);
    await sim?.close();
  });

  it('ends the batch as scripted', async () => {
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: N, completed: COMPLETED, failed: FAILED });
    const { output, errors } = await results(client, batch);
    expect(output).toHaveLength(COMPLETED);
    expect(errors).toHaveLength(FAILED);
  });

  it('counts API requests by route pattern, file bytes, the batch it created and batches by status', async () => {
    const s = parseExposition(await (await fetch(`${apiUrl}/metrics`)).text());
    const requests = (labels: Record<string, string>) =>
      total(s, 'barge_http_request_duration_seconds_count', labels);
    expect(requests({ method: 'POST', route: '/v1/batches', status: '200' })).toBe(1);
    expect(requests({ method: 'POST', route: '/v1/files', status: '200' })).toBe(1);
    expect(requests({ method: 'GET', route: '/v1/batches/:id', status: '200' })).toBeGreaterThan(1);
    expect(requests({ method: 'GET', route: '/v1/files/:id/content', status: '200' })).toBe(2);
    // Patterns, never ids.
    const routes = [
      ...new Set(
        s.filter((x) => x.name === 'barge_http_request_duration_seconds_count').map((x) => x.labels.route),
      ),
    ];
    expect(routes.length).toBeGreaterThan(3);
    expect(routes.filter((r) => /batch_[A-Za-z0-9]{8}|file-[A-Za-z0-9]{8}/.test(r))).toEqual([]);

    const [outputFile, errorFile] = await Promise.all([
      client.files.retrieve(batch.output_file_id!),
      client.files.retrieve(batch.error_file_id!),
    ]);
    expect(total(s, 'barge_file_bytes_total', { direction: 'uploaded' })).toBe(inputBytes);
    expect(total(s, 'barge_file_bytes_total', { direction: 'downloaded' })).toBe(
      outputFile.bytes + errorFile.bytes,
    );
    expect(total(s, 'barge_batch_transitions_total', { status: 'validating' })).toBe(1);
    // The shared database holds other tests' batches too: at least this one.
    expect(total(s, 'barge_batches', { status: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(
      s
        .filter((x) => x.name === 'barge_batches')
        .map((x) => x.labels.status)
        .sort(),
    ).toEqual([
      'cancelled',
      'cancelling',
      'completed',
      'expired',
      'failed',
      'finalizing',
      'in_progress',
      'validating',
    ]);
    expect(s.filter((x) => x.name === 'barge_batch_longest_without_progress_seconds')).toHaveLength(1);
    const own = s.filter((x) => x.name.startsWith('barge_'));
    expect(own.filter((x) => x.labels.process !== 'api')).toEqual([]);
  });

  it('gives every answer a request id the official SDK sees, errors included, and echoes a safe client id', async () => {
    const REQUEST_ID = /^req_[0-9a-f]{32}$/;
    expect(createRequestId).toMatch(REQUEST_ID);
    const missing = await client.batches.retrieve('batch_doesnotexist00000000').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.APIError);
    expect((missing as InstanceType<typeof OpenAI.APIError>).status).toBe(404);
    expect((missing as InstanceType<typeof OpenAI.APIError>).requestID).toMatch(REQUEST_ID);
    const stranger = openaiFor(bogusKey, { baseUrl: apiUrl, maxRetries: 0 });
    const refused = await stranger.batches.list().catch((e: unknown) => e);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(401);
    expect((refused as InstanceType<typeof OpenAI.APIError>).requestID).toMatch(REQUEST_ID);

    const auth = { authorization: `Bearer ${tenant.key}` };
    const echoed = await fetch(`${apiUrl}/v1/batches`, {
      headers: { ...auth, 'x-client-request-id': CLIENT_ID },
    });
    expect(echoed.status).toBe(200);
    expect(echoed.headers.get('x-client-request-id')).toBe(CLIENT_ID);
    echoedRequestId = echoed.headers.get('x-request-id')!;
    expect(echoedRequestId).toMatch(REQUEST_ID);
    for (const unsafe of ['has space', 'quote"d', 'semi;colon<>', 'a'.repeat(513)]) {
      const res = await fetch(`${apiUrl}/v1/batches`, {
        headers: { ...auth, 'x-client-request-id': unsafe },
      });
      expect({ unsafe, echoed: res.headers.get('x-client-request-id') }).toEqual({ unsafe, echoed: null });
      expect(res.headers.get('x-request-id')).toMatch(REQUEST_ID);
    }
    // A request Node's parser refuses, answered before any middleware: an id all the same.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(apiUrl).port), '127.0.0.1', () =>
        socket.write('GET /v1/batches HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'),
      );
      let answer = '';
      socket.on('data', (d) => (answer += d));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).toMatch(/\r\nx-request-id: req_[0-9a-f]{32}\r\n/i);
  });

  it("logs one JSON line per API request, with its request id, the client's id and the tenant", () => {
    const lines = parseLines(apiLogs.stdout());
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.find((l) => l.request_id === createRequestId)).toMatchObject({
      tenant_id: tenant.tenantId,
      req: { method: 'POST', url: '/v1/batches' },
      res: { status_code: 200 },
    });
    expect(lines.find((l) => l.request_id === echoedRequestId)).toMatchObject({
      client_request_id: CLIENT_ID,
      tenant_id: tenant.tenantId,
      res: { status_code: 200 },
    });
    // Every line about a request carries its id; none carries a header.
    const aboutRequests = lines.filter((l) => l.req !== undefined);
    expect(aboutRequests.length).toBeGreaterThan(5);
    expect(aboutRequests.filter((l) => typeof l.request_id !== 'string')).toEqual([]);
    expect(aboutRequests.filter((l) => JSON.stringify(l.req).includes('headers'))).toEqual([]);
  });

  it('counts requests by outcome exactly as the batch counts them, while it runs and after', () => {
    const labels = { endpoint: '/v1/chat/completions', upstream: 'obs-sim', model: 'gpt-4o-mini' };
    expect(during.status).toBe('in_progress');
    expect(total(during.worker, 'barge_requests_total')).toBe(N - SLOW);
    expect(total(during.worker, 'barge_upstream_in_flight', { upstream: 'obs-sim' })).toBe(SLOW);

    expect(total(after, 'barge_requests_total', { ...labels, outcome: 'completed' })).toBe(
      batch.request_counts!.completed,
    );
    expect(total(after, 'barge_requests_total', { ...labels, outcome: 'failed' })).toBe(
      batch.request_counts!.failed,
    );
    expect(total(after, 'barge_requests_total')).toBe(batch.request_counts!.total);
    expect(total(after, 'barge_upstream_in_flight', { upstream: 'obs-sim' })).toBe(0);
    expect(total(after, 'barge_upstream_queue_depth', { upstream: 'obs-sim' })).toBe(0);
  });

  it('counts one retry per scripted fault that was retried, and every 429 seen', () => {
    const seen = sim.stats().byStatus;
    const retries = (reason: string) =>
      total(after, 'barge_upstream_retries_total', { upstream: 'obs-sim', reason });
    // Scripted: 2 per RETRIED_500 line, MAX_ATTEMPTS - 1 per EXHAUSTED_500 line, 1 per RETRIED_429.
    expect(retries('500')).toBe(RETRIED_500 * 2 + EXHAUSTED_500 * (MAX_ATTEMPTS - 1));
    expect(retries('429')).toBe(RETRIED_429);
    // The simulator's view: every 500 it sent was retried except each exhausted line's last.
    expect(retries('500')).toBe(seen['500'] - EXHAUSTED_500);
    expect(retries('429')).toBe(seen['429']);
    expect(total(after, 'barge_upstream_retries_total')).toBe(retries('500') + retries('429'));
    expect(total(after, 'barge_upstream_overload_answers_total', { status: '429' })).toBe(seen['429']);

    // One duration and one time-to-first-byte per attempt the simulator received.
    const attempts = sim.stats().totalRequests;
    expect(total(after, 'barge_upstream_request_duration_seconds_count', { upstream: 'obs-sim' })).toBe(
      attempts,
    );
    expect(total(after, 'barge_upstream_request_duration_seconds_count', { status: '400' })).toBe(FINAL_400);
    expect(total(after, 'barge_upstream_time_to_first_byte_seconds_count')).toBe(attempts);
    expect(total(after, 'barge_limiter_wait_seconds_count')).toBe(attempts);
  });

  it('counts the tokens the batch reports, the transitions the worker made, and activity durations', () => {
    expect(batch.usage?.input_tokens).toBeGreaterThan(0);
    expect(total(after, 'barge_tokens_total', { kind: 'input', model: 'gpt-4o-mini' })).toBe(
      batch.usage!.input_tokens,
    );
    expect(total(after, 'barge_tokens_total', { kind: 'output', model: 'gpt-4o-mini' })).toBe(
      batch.usage!.output_tokens,
    );
    for (const status of ['in_progress', 'finalizing', 'completed']) {
      expect({ status, n: total(after, 'barge_batch_transitions_total', { status }) }).toEqual({
        status,
        n: 1,
      });
    }
    expect(total(after, 'barge_validation_duration_seconds_count', { result: 'ok' })).toBe(1);
    expect(total(after, 'barge_finalize_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(total(after, 'barge_chunk_duration_seconds_count', { end: 'done' })).toBeGreaterThanOrEqual(2);
    expect(total(after, 'barge_chunk_duration_seconds_count', { end: 'failed' })).toBe(0);
    expect(total(after, 'barge_finalize_oldest_running_seconds')).toBe(0);
    // Every Barge series carries the process it came from.
    const own = after.filter((s) => s.name.startsWith('barge_'));
    expect(own.length).toBeGreaterThan(0);
    expect(own.filter((s) => s.labels.process !== 'worker')).toEqual([]);
  });

  it("appends the Temporal runtime's metrics to the worker's own", () => {
    const families = [...declaredFamilies(afterText)];
    expect(families.filter((f) => f.startsWith('temporal_')).length).toBeGreaterThan(5);
    expect(
      total(after, 'temporal_activity_execution_latency_seconds_count', { activity_type: 'dispatchChunk' }),
    ).toBeGreaterThanOrEqual(2);
    expect(total(after, 'barge_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(total(after, 'barge_memory_limit_bytes')).toBeGreaterThan(0);
  });

  it('logs JSON lines only, with the batch id on every line about it', () => {
    const lines = parseLines(workerLogs.stdout());
    expect(lines.length).toBeGreaterThan(0);
    const aboutBatch = lines.filter((l) => l.batch_id === batch.id);
    const messages = aboutBatch.map((l) => String(l.msg));
    expect(messages).toEqual(
      expect.arrayContaining([expect.stringMatching(/^validated: 60 requests in 2 chunks/)]),
    );
    expect(messages.filter((m) => m.startsWith('chunk done')).length).toBeGreaterThanOrEqual(2);
    expect(messages).toEqual(expect.arrayContaining(['batch completed']));
    // Barge's chunk lines carry the tenant and the chunk; Temporal's own lines the batch too.
    const chunkLines = aboutBatch.filter((l) => String(l.msg).startsWith('chunk done'));
    for (const l of chunkLines)
      expect(l).toMatchObject({ tenant_id: tenant.tenantId, chunk: expect.any(Number) });
    expect(aboutBatch.filter((l) => l.component === 'temporal').length).toBeGreaterThan(0);
    // No line mentions the batch without carrying its id.
    const unlabelled = lines.filter((l) => JSON.stringify(l).includes(batch.id) && l.batch_id !== batch.id);
    expect(unlabelled).toEqual([]);
    for (const l of lines) expect(l).toMatchObject({ level: expect.any(String), time: expect.any(String) });
  });

  it('never logs the upstream key, the tenant key or the storage secret', () => {
    // A refused key too (the request-id test sent it).
    expect(echoedRequestId).toBeDefined();
    const everything = [
      workerLogs.stdout().join('\n'),
      workerLogs.stderr(),
      apiLogs.stdout().join('\n'),
      apiLogs.stderr(),
    ].join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [upstreamKey, tenant.key, bogusKey, process.env.BARGE_STORAGE_SECRET_KEY!]) {
      expect(secret.length).toBeGreaterThan(5);
      expect(everything).not.toContain(secret);
    }
  });

  it('serves the worker metrics to a real Prometheus, alert rules loaded', async () => {
    const binary = process.env.BARGE_TEST_PROMETHEUS_BIN;
    expect(binary).toBeTruthy();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'barge-prom-'));
    const target = new URL(workerMetrics).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(ROOT, 'deploy/prometheus/alerts.yml')],
        scrape_configs: [
          { job_name: 'barge-worker', static_configs: [{ targets: [target] }] },
          { job_name: 'barge-api', static_configs: [{ targets: [new URL(apiUrl).host] }] },
        ],
      }),
    );
    const prometheus = spawn(
      binary!,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr?.on('data', (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    try {
      const query = `sum(barge_requests_total{job="barge-worker",outcome="completed"})`;
      const value = await waitFor(
        'a Barge series in Prometheus',
        async () => {
          const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`);
          const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
          return body.data?.result?.[0]?.value[1];
        },
        30_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${log.slice(-2000)}`);
      });
      expect(Number(value)).toBe(COMPLETED);
      const created = await waitFor('the API series in Prometheus', async () => {
        const q = `sum(barge_batch_transitions_total{job="barge-api",status="validating"})`;
        const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
        return body.data?.result?.[0]?.value[1];
      });
      expect(Number(created)).toBe(1);
      const rules = (await (await fetch(`${base}/api/v1/rules`)).json()) as {
        data: { groups: { name: string; rules: { name: string; health: string }[] }[] };
      };
      const barge = rules.data.groups.find((g) => g.name === 'barge');
      expect(barge?.rules.map((r) => r.name)).toEqual(
        expect.arrayContaining([
          'BargeBatchWithoutProgress',
          'BargeChunkActivitiesFailing',
          'BargeUpstreamCircuitOpen',
          'BargeFinalizeRunningLong',
          'BargeWorkerMemoryNearLimit',
        ]),
      );
    } finally {
      await stopProcess(prometheus);
    }
  }, 60_000);

  it('writes every metric name the dashboard and alerts use for Temporal into the worker scrape', () => {
    const families = declaredFamilies(afterText);
    const used = new Set<string>();
    for (const file of ['deploy/grafana/dashboards/barge.json', 'deploy/prometheus/alerts.yml']) {
      for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/\btemporal_[a-z0-9_]+/g))
        used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(0);
    const base = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
    const missing = [...used].filter((name) => !families.has(name) && !families.has(base(name)));
    expect(missing).toEqual([]);
  });
});

describe('the API metrics token', () => {
  const token = `metrics-${randomBytes(16).toString('hex')}`;
  let api: ChildProcess;
  let url: string;

  beforeAll(async () => {
    const port = await freePort();
    api = startProcess('src/main.js', { BARGE_API_PORT: String(port), BARGE_METRICS_TOKEN: token });
    url = `http://127.0.0.1:${port}`;
    await waitFor('the api', async () => (await fetch(`${url}/healthz`)).ok);
  });

  afterAll(async () => {
    if (api) await stopProcess(api);
  });

  it('when set, is the only thing that opens GET /metrics (a tenant key does not)', async () => {
    const tenantKey = (await createTenant(`obs-token-${Date.now().toString(36)}`)).key;
    const denied = await fetch(`${url}/metrics`);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
    expect(denied.headers.get('x-request-id')).toMatch(/^req_/);
    expect(
      (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${tenantKey}` } })).status,
    ).toBe(401);
    const allowed = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
    expect(parseExposition(await allowed.text()).some((s) => s.name === 'barge_batches')).toBe(true);
  });
});
