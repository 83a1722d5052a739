import { Client, Connection } from '@temporalio/client';
import type { BargeConfig } from '../config/config';

/**
 * A Temporal client whose connection is made on first use, so the API starts (and reports
 * Temporal as not ready on /readyz) even while the Temporal server is down.
 */
export function createTemporalClient(config: BargeConfig['temporal']): Client {
  const connection = Connection.lazy({ address: config.address });
  return new Client({ connection, namespace: config.namespace });
}

/** Throws unless the server answers and the namespace exists. */
export async function pingTemporal(client: Client, namespace: string, timeoutMs = 3_000): Promise<void> {
  await client.connection.withDeadline(Date.now() + timeoutMs, () =>
    client.workflowService.describeNamespace({ namespace }),
  );
}
