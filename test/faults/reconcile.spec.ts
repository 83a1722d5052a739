import { Client, Connection } from '@temporalio/client';
import OpenAI from 'openai';
import { createTenantKey, openaiFor } from '../support/api';
import { chatLine, results, submitBatch, waitForStatus } from '../support/batches';
import { stackConfig, waitFor } from '../support/stack';

/**
 * Postgres and Temporal agree: a batch whose workflow is terminated from the Web UI (or CLI)
 * is finished by the worker's reconciler with what it had, instead of staying non-terminal
 * forever. The test stack runs the reconciler every 2 s with a 3 s grace.
 */
describe('reconciler', () => {
  const config = stackConfig();
  let connection: Connection;
  let temporal: Client;
  let client: OpenAI;

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
    temporal = new Client({ connection, namespace: config.temporal.namespace });
    client = openaiFor(await createTenantKey(`reconcile-${Date.now()}`));
  });
  afterAll(() => connection.close());

  it('ends a batch whose workflow was terminated, keeping its finished results', async () => {
    const lines = Array.from({ length: 30 }, (_, i) =>
      chatLine(`r-${i}`, i < 5 ? {} : { simulate: { latency_ms: 60_000 } }),
    );
    const created = await submitBatch(client, lines);
    // Generous: on a loaded 2-core machine (the whole suite beside it) validation and the
    // first flush have taken more than the default 30 s.
    await waitFor(
      'five finished requests',
      async () => (await client.batches.retrieve(created.id)).request_counts!.completed >= 5,
      90_000,
    );

    await temporal.workflow.getHandle(created.id).terminate('operator pressed Terminate');

    const batch = await waitForStatus(client, created.id, ['failed', 'completed', 'cancelled'], 60_000);
    expect(batch.status).toBe('failed');
    expect(batch.errors?.data).toEqual([
      expect.objectContaining({ code: 'batch_failed', message: expect.stringContaining('terminated') }),
    ]);
    const { output, errors, ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(30);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4']);
    expect(errors).toHaveLength(25);
    expect(errors.every((l) => l.error?.code === 'batch_failed')).toBe(true);
  }, 180_000);

  it('cancels a batch that was cancelling when its workflow was terminated', async () => {
    const lines = Array.from({ length: 10 }, (_, i) =>
      chatLine(`rc-${i}`, { simulate: { latency_ms: 60_000 } }),
    );
    const created = await submitBatch(client, lines);
    await waitForStatus(client, created.id, ['in_progress']);
    // Terminated right after the workflow took the cancel: the reconciler finishes it.
    const cancelled = await client.batches.cancel(created.id);
    expect(cancelled.status).toBe('cancelling');
    await temporal.workflow.getHandle(created.id).terminate('operator pressed Terminate');
    const batch = await waitForStatus(client, created.id, ['cancelled', 'failed', 'completed'], 60_000);
    expect(batch.status).toBe('cancelled');
    const { ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(10);
  }, 90_000);
});
