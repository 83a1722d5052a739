import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { ApiKeyStore } from '../../src/auth/api-key-store';
import { buildConfig } from '../../src/config/config';
import { createDataSource } from '../../src/database/data-source';
import { openaiFor } from '../support/api';
import { chatLine, results, submitBatch, waitForStatus } from '../support/batches';
import { startPrivatePostgres, type PrivatePostgres } from '../support/postgres';
import { startApi, startProcess, stopProcess, waitFor } from '../support/stack';

/**
 * Postgres stopped for 10 s under a running batch (a Postgres of this test's own, so the
 * shared stack is untouched): nothing is lost, every request has exactly one line, and, the
 * outage being shorter than batches.recordGiveUpMs, nothing is sent twice.
 */
describe('Postgres outage mid-dispatch', () => {
  const queues = {
    BARGE_TEMPORAL_TASK_QUEUE: `pg-outage-${process.pid}`,
    BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `pg-outage-upstream-${process.pid}`,
  };
  let pg: PrivatePostgres;
  let api: ChildProcess;
  let worker: ChildProcess;
  let client: OpenAI;
  let env: Record<string, string>;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    env = { ...queues, BARGE_POSTGRES_URL: pg.url };
    worker = startProcess('src/worker.js', env);
    const started = await startApi(env, '/readyz');
    api = started.api;
    const db = createDataSource(buildConfig({ ...process.env, ...env }), 'barge-test');
    await db.initialize();
    const { key } = await new ApiKeyStore(db).create(`pg-outage-${Date.now()}`, 'test');
    await db.destroy();
    // Retries cover the seconds the API cannot reach Postgres.
    client = openaiFor(key, { baseUrl: started.url, maxRetries: 10 });
  });

  afterAll(async () => {
    await stopProcess(worker);
    await stopProcess(api);
    pg?.destroy();
  });

  it('loses nothing and sends nothing twice', async () => {
    const n = 2_000;
    // A model name of this test's own: the simulator counts its requests apart.
    const model = `outage-${randomBytes(3).toString('hex')}`;
    const lines = Array.from({ length: n }, (_, i) =>
      chatLine(`o-${i}`, { model, simulate: { latency_ms: 100 } }),
    );
    const created = await submitBatch(client, lines);
    await waitFor(
      'some progress',
      async () => (await client.batches.retrieve(created.id)).request_counts!.completed >= 300,
      60_000,
    );

    pg.stop();
    await new Promise((r) => setTimeout(r, 10_000));
    pg.start();

    const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 150_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    const { ids, duplicates, count } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect([count, ids.size]).toEqual([n, n]);

    const stats = (await (
      await fetch(`${process.env.BARGE_SIMULATOR_URL!.replace(/\/v1$/, '')}/_sim/stats?model=${model}`)
    ).json()) as {
      totalRequests: number;
    };
    // Shorter than batches.recordGiveUpMs, the outage costs no answer: answers that arrived
    // while Postgres was down waited in the worker, and nothing new was sent. Nothing twice.
    expect(stats.totalRequests).toBe(n);
  }, 240_000);
});
