import { Client, Connection } from '@temporalio/client';
import { stackConfig } from '../support/stack';

/** A workflow executed end to end by the real worker process of the test stack. */
describe('Temporal worker', () => {
  const config = stackConfig();
  let connection: Connection;

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
  });
  afterAll(() => connection.close());

  it('runs the probe workflow and its activity against Postgres and MinIO', async () => {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const result = await client.workflow.execute('probeWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `probe-${Date.now()}`,
      workflowExecutionTimeout: '30s',
    });
    expect(result).toMatchObject({ storage: 'ok' });
    expect(result.postgres).toMatch(/^PostgreSQL \d+/);
    expect(result.worker).toMatch(/:\d+$/);
  });
});
