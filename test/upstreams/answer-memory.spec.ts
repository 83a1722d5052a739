import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ByteBudget } from '../../src/batches/dispatch/byte-budget';
import { ANSWER_READ_MEMORY_PER_BYTE, HttpUpstream } from '../../src/upstreams/http-upstream';
import { loadUpstreams } from '../../src/upstreams/registry';
import { configWith } from './support';

/**
 * The transport reads an answer's body only once the worker's answer memory has room for it
 * (HttpUpstream with an AnswerMemory): a loopback server, the real undici pool.
 */
describe('answer memory', () => {
  const ANSWER = JSON.stringify({ object: 'list', data: 'x'.repeat(300_000) });
  let server: Server;
  let transport: HttpUpstream;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(ANSWER),
        });
        res.end(ANSWER);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    await transport?.close();
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function transportWith(memory: ByteBudget): HttpUpstream {
    const { port } = server.address() as AddressInfo;
    const [upstream] = loadUpstreams(
      configWith({ upstreams: [{ name: 'local', baseUrl: `http://127.0.0.1:${port}/v1`, models: ['*'] }] }),
      {},
    );
    transport = new HttpUpstream(upstream, memory);
    return transport;
  }

  const attempt = (signal = new AbortController().signal) => ({
    endpoint: '/v1/embeddings',
    body: '{"model":"m","input":"hi"}',
    requestId: 'r1',
    signal,
  });

  async function until(condition: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
    if (!condition()) throw new Error(`not reached: ${what}`);
  }

  it('waits with the answer unread until there is room for it, then reads it and gives the room back', async () => {
    const need = Buffer.byteLength(ANSWER) * ANSWER_READ_MEMORY_PER_BYTE;
    const memory = new ByteBudget(need);
    const held = memory.charge(1); // one byte short of room for the answer
    const send = transportWith(memory).send(attempt());
    let settled = false;
    void send.finally(() => (settled = true));
    await until(() => memory.queued === 1, 'the answer waiting for room');
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    held();
    const answer = await send;
    expect(answer).toMatchObject({ kind: 'response', status: 200 });
    expect(answer.kind === 'response' && answer.text).toBe(ANSWER);
    expect(memory.inUse).toBe(0);
  });

  it('is aborted while it waits for room, holding nothing', async () => {
    const memory = new ByteBudget(1024);
    const held = memory.charge(1024);
    const controller = new AbortController();
    const send = transportWith(memory).send(attempt(controller.signal));
    await until(() => memory.queued === 1, 'the answer waiting for room');
    controller.abort(new Error('batch cancelled'));
    await expect(send).rejects.toMatchObject({ name: 'AbortError' });
    expect(memory.queued).toBe(0);
    held();
    expect(memory.inUse).toBe(0);
  });
});
