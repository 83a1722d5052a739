import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiUrl } from './stack';

/** A webhook as a receiver got it: the raw body and headers. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP receiver on 127.0.0.1 (the only place tests send traffic). It can answer with a
 * status of the test's choice, and be stopped and started again on the same port (an outage).
 */
export class Receiver {
  readonly received: ReceivedWebhook[] = [];
  status = 200;
  private server: Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/webhooks/barge`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body });
        res
          .writeHead(this.status, { 'content-type': 'text/plain' })
          .end(this.status < 300 ? 'ok' : 'not now');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  /** The webhooks received whose body names `batchId`. */
  about(batchId: string): ReceivedWebhook[] {
    return this.received.filter((r) => (JSON.parse(r.body) as { data: { id: string } }).data.id === batchId);
  }
}

/** A call to the webhook endpoints API as `key` (the openai package has no client for it). */
export async function api<T = Record<string, unknown>>(
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${apiUrl()}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

export interface EndpointObject {
  id: string;
  object: 'webhook_endpoint';
  url: string;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  secret?: string;
  secret_hint: string;
  event_types: string[];
  previous_secret_expires_at: number | null;
}

export interface DeliveryObject {
  id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  status: 'succeeded' | 'failed' | 'skipped';
  response_status_code: number | null;
  error: string | null;
  next_attempt_at: number | null;
  test: boolean;
}

export async function createEndpoint(key: string, body: Record<string, unknown>): Promise<EndpointObject> {
  const created = await api<EndpointObject>(key, 'POST', '/v1/webhook_endpoints', body);
  if (created.status !== 200)
    throw new Error(`create endpoint: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body;
}

export async function deliveries(key: string, endpointId: string): Promise<DeliveryObject[]> {
  const list = await api<{ data: DeliveryObject[] }>(
    key,
    'GET',
    `/v1/webhook_endpoints/${endpointId}/deliveries?limit=100`,
  );
  return list.body.data;
}
