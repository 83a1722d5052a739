import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startSimulator, SimulatorHandle } from '../../src/simulator/server';
import { createTenantKey, openaiFor } from '../support/api';
import { chatLine, submitBatch, results, uploadJsonl, waitForStatus } from '../support/batches';
import { startApi, startProcess, stopProcess } from '../support/stack';

/**
 * Batches against an upstream registry of their own: an API and a worker started with a YAML
 * config naming two simulators, the preferred one failing every request.
 */
describe('batches across upstreams, and batch limits', () => {
  let broken: SimulatorHandle;
  let healthy: SimulatorHandle;
  let api: ChildProcess;
  let worker: ChildProcess;
  let client: OpenAI;

  beforeAll(async () => {
    broken = await startSimulator({ port: 0, errorRate: 1 });
    healthy = await startSimulator({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'barge-routing-'));
    const configFile = join(dir, 'barge.yaml');
    writeFileSync(
      configFile,
      [
        'upstreams:',
        `  - { name: flaky, baseUrl: "${broken.url}/v1", models: ["*"], priority: 1 }`,
        `  - { name: steady, baseUrl: "${healthy.url}/v1", models: ["*"], priority: 2 }`,
        // Fail over quickly: the breaker opens after a few consecutive failures.
        'routing: { breakerThreshold: 3 }',
      ].join('\n'),
    );
    const env = {
      BARGE_CONFIG: configFile,
      BARGE_TEMPORAL_TASK_QUEUE: `routing-${process.pid}`,
      BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `routing-upstream-${process.pid}`,
      BARGE_MAX_REQUESTS_PER_BATCH: '500',
    };
    worker = startProcess('src/worker.js', env);
    const started = await startApi(env, '/readyz');
    api = started.api;
    client = openaiFor(await createTenantKey(`routing-${Date.now()}`), { baseUrl: started.url });
  });

  afterAll(async () => {
    await Promise.all([stopProcess(worker), stopProcess(api)]);
    await Promise.all([broken.close(), healthy.close()]);
  });

  it('answers every request of a batch whose preferred upstream keeps failing', async () => {
    const n = 300;
    const created = await submitBatch(
      client,
      Array.from({ length: n }, (_, i) => chatLine(`route-${i}`)),
    );
    const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 90_000);
    expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    const { ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(n);
    // The failing upstream was tried, then the rest went to the healthy one.
    expect(broken.stats().totalRequests).toBeGreaterThan(0);
    expect(healthy.stats().byStatus['200']).toBe(n);
  });

  it('pins a provider by header: only that upstream is called, and unknown providers are refused at create', async () => {
    const file = await uploadJsonl(client, [chatLine('pinned-0'), chatLine('pinned-1')]);
    const created = await client.batches.create(
      { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' },
      { headers: { 'x-barge-provider': 'steady' } },
    );
    const before = healthy.stats().totalRequests;
    const batch = await waitForStatus(client, created.id, ['completed'], 60_000);
    expect(batch.request_counts).toMatchObject({ completed: 2, failed: 0 });
    expect(healthy.stats().totalRequests - before).toBe(2);

    await expect(
      client.batches.create(
        { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' },
        { headers: { 'x-barge-provider': 'nowhere' } },
      ),
    ).rejects.toMatchObject({ status: 400, param: 'x-barge-provider' });
  });

  it('fails a batch over the request limit, and caps the listed errors with a count of the rest', async () => {
    const a = await submitBatch(
      client,
      Array.from({ length: 501 }, (_, i) => chatLine(`many-${i}`)),
    );
    const failedA = await waitForStatus(client, a.id, ['failed', 'completed']);
    expect(failedA.errors?.data).toEqual([
      expect.objectContaining({
        code: 'too_many_requests_in_batch',
        line: null,
        message: expect.stringContaining('501'),
      }),
    ]);

    const b = await submitBatch(client, [
      chatLine('ok'),
      ...Array.from({ length: 150 }, (_, i) => ({ ...chatLine(`bad-${i}`), method: 'GET' })),
    ]);
    const failedB = await waitForStatus(client, b.id, ['failed', 'completed']);
    const errors = failedB.errors?.data ?? [];
    expect(errors).toHaveLength(101);
    expect(errors[0]).toMatchObject({ code: 'invalid_method', line: 2, param: 'method' });
    expect(errors[99]).toMatchObject({ line: 101 });
    expect(errors[100]).toMatchObject({
      code: 'too_many_errors',
      message: '50 more errors were found and not listed.',
    });
  });
});
