import type { ChildProcess } from 'node:child_process';
import OpenAI from 'openai';
import { createTenantKey, openaiFor } from '../support/api';
import { chatLine, submitBatch, results, waitForStatus } from '../support/batches';
import { startApi, startProcess, stopProcess, waitFor } from '../support/stack';

/**
 * A worker SIGKILLed in the middle of a batch loses nothing and duplicates nothing: the
 * chunks it held time out on their heartbeats and resume on a new worker, skipping every
 * request whose outcome Postgres already has.
 *
 * The two cases mostly wait (a shutdown grace, heartbeat timeouts), so they run concurrently,
 * each with a worker, an API and task queues of its own.
 */
describe('worker killed mid-batch', () => {
  const processes: ChildProcess[] = [];

  /** A worker and an API on task queues of their own; `restart` starts another worker on them. */
  async function ownStack(
    name: string,
  ): Promise<{ client: OpenAI; worker: ChildProcess; restart: () => ChildProcess }> {
    const queues = {
      BARGE_TEMPORAL_TASK_QUEUE: `kill-test-${name}-${process.pid}`,
      BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `kill-test-${name}-upstream-${process.pid}`,
    };
    const restart = () => {
      const worker = startProcess('src/worker.js', queues);
      processes.push(worker);
      return worker;
    };
    const worker = restart();
    const started = await startApi(queues, '/readyz');
    processes.push(started.api);
    const key = await createTenantKey(`kill-${name}-${Date.now()}`);
    return { client: openaiFor(key, { baseUrl: started.url, maxRetries: 5 }), worker, restart };
  }

  afterAll(() => Promise.all(processes.map((p) => stopProcess(p))));

  /** A batch of `n` requests at 150 ms each, once a tenth of them are answered. */
  async function runningBatch(client: OpenAI, name: string, n: number) {
    const lines = Array.from({ length: n }, (_, i) =>
      chatLine(`${name}-${i}`, { simulate: { latency_ms: 150 } }),
    );
    const created = await submitBatch(client, lines, {}, { filename: `${name}.jsonl` });
    await waitFor(
      'some progress',
      async () => (await client.batches.retrieve(created.id)).request_counts!.completed >= n / 10,
      60_000,
    );
    return created;
  }

  it.concurrent(
    'shuts down gracefully on SIGTERM mid-batch, and a new worker finishes the batch',
    async () => {
      const { client, worker, restart } = await ownStack('term');
      const n = 2_000;
      const created = await runningBatch(client, 'term', n);

      const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
      worker.kill('SIGTERM');
      // The test stack gives in-flight chunks 5 s (BARGE_WORKER_SHUTDOWN_GRACE_SECONDS) to finish.
      expect(await exited).toBe(0);
      expect((await client.batches.retrieve(created.id)).request_counts!.completed).toBeLessThan(n);

      restart();
      const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 120_000);
      expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      const { ids, duplicates, count } = await results(client, batch);
      expect(duplicates).toEqual([]);
      expect([count, ids.size]).toEqual([n, n]);
    },
    180_000,
  );

  it.concurrent(
    'finishes with exactly one line per custom_id after SIGKILL and restart',
    async () => {
      const { client, worker, restart } = await ownStack('kill');
      const n = 3_000;
      const created = await runningBatch(client, 'kill', n);
      await stopProcess(worker, 'SIGKILL');
      const atKill = (await client.batches.retrieve(created.id)).request_counts!;
      expect(atKill.completed).toBeLessThan(n);

      restart();
      const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 120_000);
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      const { ids, duplicates, count } = await results(client, batch);
      expect(duplicates).toEqual([]);
      expect(count).toBe(n);
      expect(ids.size).toBe(n);
    },
    180_000,
  );
});
