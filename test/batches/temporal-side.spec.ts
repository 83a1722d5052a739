import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { join } from 'node:path';
import OpenAI from 'openai';
import { BatchStatusKey, EndpointKey, ModelKey, TenantIdKey } from '../../workflows/search-attributes';
import { createTenantKey, openaiFor } from '../support/api';
import { chatLine, submitBatch, results, waitForStatus } from '../support/batches';
import { ROOT, stackConfig, waitFor } from '../support/stack';

/** What an operator sees and does in the Temporal Web UI. */
describe('batches in Temporal', () => {
  const config = stackConfig();
  let connection: Connection;
  let temporal: Client;
  let client: OpenAI;

  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    connection = await Connection.connect({ address: config.temporal.address });
    temporal = new Client({ connection, namespace: config.temporal.namespace });
    client = openaiFor(await createTenantKey(`temporal-side-${Date.now()}`));
  });
  afterAll(() => connection.close());

  it('makes each batch findable by status, tenant, model and endpoint', async () => {
    const created = await submitBatch(client, [chatLine('sa-1'), chatLine('sa-2')]);
    await waitForStatus(client, created.id, ['completed']);
    const description = await waitFor('search attributes', async () => {
      const d = await temporal.workflow.getHandle(created.id).describe();
      return d.typedSearchAttributes.get(BatchStatusKey) === 'completed' ? d : undefined;
    });
    expect(description.typedSearchAttributes.get(EndpointKey)).toBe('/v1/chat/completions');
    expect(description.typedSearchAttributes.get(ModelKey)).toBe('gpt-4o-mini');
    expect(description.typedSearchAttributes.get(TenantIdKey)).toEqual(expect.any(String));

    const tenant = description.typedSearchAttributes.get(TenantIdKey);
    const found = await waitFor('visibility', async () => {
      const ids: string[] = [];
      for await (const wf of temporal.workflow.list({
        query: `TenantId = "${tenant}" AND BatchStatus = "completed"`,
      })) {
        ids.push(wf.workflowId);
      }
      return ids.includes(created.id) ? ids : undefined;
    });
    expect(found).toContain(created.id);
  });

  it('continues as new when history grows, keeping the clock and every request exactly once', async () => {
    // The test stack suggests continue-as-new after 150 events and cuts chunks of 50 requests.
    const n = 2_500;
    const created = await submitBatch(
      client,
      Array.from({ length: n }, (_, i) => chatLine(`can-${i}`)),
    );
    const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 120_000);
    expect(batch.status).toBe('completed');
    expect(batch.expires_at).toBe(created.expires_at);
    const { ids, duplicates, count } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect([count, ids.size]).toEqual([n, n]);

    // The batch is completed when finalize commits; its last run ends a moment later (finalize
    // still slims the outcome rows), and visibility lags behind that.
    const runs = await waitFor('the last run completed', async () => {
      const statuses: string[] = [];
      for await (const wf of temporal.workflow.list({ query: `WorkflowId = "${created.id}"` }))
        statuses.push(wf.status.name);
      return statuses.includes('COMPLETED') && statuses;
    });
    expect(runs.filter((s) => s === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(1);
  });

  it('replays recorded batch histories with the current workflow bundle (determinism across deploys)', async () => {
    // Histories of this suite's finished batches: completed, continued-as-new and cancelled runs.
    const histories = [];
    for await (const wf of temporal.workflow.list({
      query: `WorkflowType = "batchWorkflow" AND ExecutionStatus != "Running"`,
    })) {
      histories.push({
        workflowId: wf.workflowId,
        history: await temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory(),
      });
      if (histories.length >= 10) break;
    }
    expect(histories.length).toBeGreaterThan(0);
    const replayed = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: join(ROOT, 'dist', 'workflow-bundle.js') } },
      histories,
    )) {
      replayed.push(result);
    }
    expect(replayed.filter((r) => r.error)).toEqual([]);
    expect(replayed).toHaveLength(histories.length);
  });

  it('treats "Request Cancellation" from the Web UI like the API cancel', async () => {
    const lines = Array.from({ length: 40 }, (_, i) =>
      chatLine(`ui-${i}`, i < 2 ? {} : { simulate: { latency_ms: 60_000 } }),
    );
    const created = await submitBatch(client, lines);
    await waitFor(
      'two finished requests',
      async () => (await client.batches.retrieve(created.id)).request_counts!.completed >= 2,
    );

    await temporal.workflow.getHandle(created.id).cancel();

    const batch = await waitForStatus(client, created.id, ['cancelled'], 30_000);
    expect(batch.cancelling_at).toEqual(expect.any(Number));
    const { output, errors, ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(40);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['ui-0', 'ui-1']);
    expect(errors.every((l) => l.error?.code === 'batch_cancelled')).toBe(true);
  });
});
