import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReceiverPolicy, type Resolver } from '../../src/webhooks/receiver-policy';
import { tcpConnector, WebhookSender, type Connector } from '../../src/webhooks/sender';

/** Loopback only: the receivers here listen on 127.0.0.1, and no other address is ever connected to. */
const loopbackAllowed = new ReceiverPolicy({
  allowedNetworks: ['127.0.0.0/8'],
  allowedHosts: [],
  allowHttp: true,
});

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

describe('WebhookSender', () => {
  let server: Server;
  let port: number;
  const received: Received[] = [];
  let answer: (res: import('node:http').ServerResponse) => unknown = (res) => res.writeHead(204).end();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        answer(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  beforeEach(() => {
    received.length = 0;
    answer = (res) => res.writeHead(204).end();
  });

  /** Records what it is asked to connect to, and connects only to loopback. */
  function spyConnector(): Connector & { targets: string[] } {
    const targets: string[] = [];
    const connector = (async (target) => {
      targets.push(target.address);
      if (!target.address.startsWith('127.')) throw new Error(`test bug: would connect to ${target.address}`);
      return tcpConnector(target);
    }) as Connector & { targets: string[] };
    connector.targets = targets;
    return connector;
  }

  it('connects to the address it checked, naming the host in the Host header', async () => {
    const resolver = jest.fn<ReturnType<Resolver>, Parameters<Resolver>>(async () => [
      { address: '127.0.0.1', family: 4 },
    ]);
    const connector = spyConnector();
    const sender = new WebhookSender(loopbackAllowed, { timeoutMs: 5_000 }, resolver, connector);
    const result = await sender.send(
      `http://hooks.receiver.test:${port}/in?x=1`,
      { 'webhook-id': 'evt_1' },
      '{"a":1}',
    );
    expect(result).toMatchObject({ ok: true, status: 204, error: null, refused: false });
    expect(resolver).toHaveBeenCalledTimes(1);
    expect(resolver).toHaveBeenCalledWith('hooks.receiver.test');
    expect(connector.targets).toEqual(['127.0.0.1']);
    expect(received).toHaveLength(1);
    expect(received[0].headers).toMatchObject({
      host: `hooks.receiver.test:${port}`,
      'webhook-id': 'evt_1',
      'content-type': 'application/json',
    });
    expect(received[0].body).toBe('{"a":1}');
  });

  it('refuses a private address before any connection: a literal asks no DNS, a name is checked once resolved', async () => {
    const resolver = jest.fn<ReturnType<Resolver>, Parameters<Resolver>>(async () => [
      { address: '10.0.0.1', family: 4 },
    ]);
    const connector = spyConnector();
    const sender = new WebhookSender(loopbackAllowed, { timeoutMs: 5_000 }, resolver, connector);

    const literal = await sender.send('http://10.0.0.1/hook', {}, '{}');
    expect(literal).toMatchObject({ ok: false, refused: true, status: null });
    expect(literal.error).toMatch(/refused: Webhooks may not be sent to 10.0.0.1/);
    expect(resolver).not.toHaveBeenCalled();

    const named = await sender.send('http://internal.receiver.test/hook', {}, '{}');
    expect(named).toMatchObject({ ok: false, refused: true });
    expect(named.error).toMatch(/internal.receiver.test resolves to 10.0.0.1/);
    expect(resolver).toHaveBeenCalledTimes(1);
    expect(connector.targets).toEqual([]);
  });

  it('is not fooled by DNS rebinding: each delivery checks what the name resolves to then', async () => {
    const answers = [
      [{ address: '127.0.0.1', family: 4 as const }],
      [{ address: '169.254.169.254', family: 4 as const }],
    ];
    const resolver: Resolver = async () => answers.shift()!;
    const connector = spyConnector();
    const sender = new WebhookSender(loopbackAllowed, { timeoutMs: 5_000 }, resolver, connector);
    expect((await sender.send(`http://rebind.receiver.test:${port}/`, {}, '{}')).ok).toBe(true);
    const second = await sender.send(`http://rebind.receiver.test:${port}/`, {}, '{}');
    expect(second).toMatchObject({ ok: false, refused: true });
    expect(connector.targets).toEqual(['127.0.0.1']);
  });

  it('reports a failing receiver, a timeout and a refused connection as failures, never throwing', async () => {
    const sender = new WebhookSender(loopbackAllowed, { timeoutMs: 300 }, undefined, spyConnector());
    answer = (res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
    expect(await sender.send(`http://127.0.0.1:${port}/`, {}, '{}')).toMatchObject({
      ok: false,
      status: 503,
      body: 'down for maintenance',
      refused: false,
    });
    answer = () => undefined; // never answers
    const slow = await sender.send(`http://127.0.0.1:${port}/`, {}, '{}');
    expect(slow).toMatchObject({ ok: false, status: null, error: 'no answer within 300 ms' });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await sender.send(`http://127.0.0.1:${closedPort}/`, {}, '{}');
    expect(refused).toMatchObject({ ok: false, status: null, refused: false });
    expect(refused.error).toMatch(/ECONNREFUSED/);
  });

  it('does not follow redirects', async () => {
    answer = (res) => res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
    const connector = spyConnector();
    const sender = new WebhookSender(loopbackAllowed, { timeoutMs: 5_000 }, undefined, connector);
    expect(await sender.send(`http://127.0.0.1:${port}/`, {}, '{}')).toMatchObject({
      ok: false,
      status: 302,
    });
    expect(connector.targets).toEqual(['127.0.0.1']);
  });
});
