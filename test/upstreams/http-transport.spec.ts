import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpUpstream, type AttemptRequest } from '../../src/upstreams/http-upstream';
import { loadUpstreams } from '../../src/upstreams/registry';
import { configWith } from './support';

/**
 * HttpUpstream, the transport on undici's dispatch API: what it reads of an answer, and how a
 * call's signal (which a chunk's calls share) ends a call wherever it is, queued in the pool
 * for a connection or waiting for its answer. A loopback server, the real undici pool.
 */
describe('HttpUpstream', () => {
  let server: Server;
  let handle: (req: IncomingMessage, res: ServerResponse) => void;
  const transports: HttpUpstream[] = [];
  const requestsSeen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      requestsSeen.push(String(req.headers['x-barge-request-id']));
      const body: Buffer[] = [];
      req.on('data', (chunk: Buffer) => body.push(chunk));
      req.on('end', () => handle(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  beforeEach(() => {
    requestsSeen.length = 0;
  });

  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function transport(maxConcurrency = 16, port = (server.address() as AddressInfo).port): HttpUpstream {
    const [upstream] = loadUpstreams(
      configWith({
        upstreams: [
          {
            name: 'local',
            baseUrl: `http://127.0.0.1:${port}/v1`,
            models: ['*'],
            limits: { maxConcurrency },
          },
        ],
      }),
      {},
    );
    const made = new HttpUpstream(upstream);
    transports.push(made);
    return made;
  }

  let n = 0;
  const attempt = (signal: AbortSignal): AttemptRequest => ({
    endpoint: '/v1/chat/completions',
    body: '{"model":"m","messages":[]}',
    requestId: `r${++n}`,
    signal,
  });

  it('reads the status, the headers (repeated ones joined), the text and its JSON, and the time to first byte', async () => {
    handle = (_req, res) => {
      res.setHeader('x-request-id', 'up-1');
      res.setHeader('x-many', ['a', 'b']);
      res.writeHead(201, { 'content-type': 'application/json' });
      // A BOM and a body in several writes (chunks): read as one text, the BOM dropped.
      res.write('\ufeff{"id":"chatcmpl-1",');
      setTimeout(() => res.end('"text":"é ✓ \\u2028"}'), 5);
    };
    const answer = await transport().send(attempt(new AbortController().signal));
    expect(answer).toMatchObject({
      kind: 'response',
      status: 201,
      headers: { 'x-request-id': 'up-1', 'x-many': 'a, b' },
      text: '{"id":"chatcmpl-1","text":"é ✓ \\u2028"}',
      body: { id: 'chatcmpl-1', text: 'é ✓ \u2028' },
    });
    expect(answer.kind === 'response' && answer.firstByteMs).toBeGreaterThanOrEqual(0);
    expect(requestsSeen).toEqual([`r${n}`]);
  });

  it('keeps a body that is not JSON as its text, and an empty one as null', async () => {
    const t = transport();
    handle = (_req, res) => {
      res.writeHead(502);
      res.end('Bad gateway');
    };
    await expect(t.send(attempt(new AbortController().signal))).resolves.toMatchObject({
      status: 502,
      text: 'Bad gateway',
      body: 'Bad gateway',
    });
    handle = (_req, res) => {
      res.writeHead(204);
      res.end();
    };
    await expect(t.send(attempt(new AbortController().signal))).resolves.toMatchObject({
      status: 204,
      text: '',
      body: null,
    });
  });

  it('aborts a call queued in the pool for a connection at once, and one waiting for its answer', async () => {
    const held: ServerResponse[] = [];
    handle = (_req, res) => held.push(res);
    const t = transport(1); // one connection: the second call waits in the pool
    const chunk = new AbortController();
    const other = new AbortController();
    const inFlight = t.send(attempt(chunk.signal));
    const queued = t.send(attempt(other.signal));
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(held).toHaveLength(1);
    // Ends while the connection is still busy with the first call: not when it frees up.
    other.abort(new Error('batch cancelled'));
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    chunk.abort(new Error('batch cancelled'));
    await expect(inFlight).rejects.toMatchObject({ name: 'AbortError' });
    // The queued call never reached the server, and the pool serves the next call.
    handle = (_req, res) => res.end('{"ok":true}');
    await expect(t.send(attempt(new AbortController().signal))).resolves.toMatchObject({
      status: 200,
      body: { ok: true },
    });
    expect(requestsSeen).toHaveLength(2);
    held.forEach((res) => res.destroy());
  });

  it('answers a refused connection as a connection error, without an answer', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    await expect(transport(4, port).send(attempt(new AbortController().signal))).resolves.toMatchObject({
      kind: 'no-answer',
      code: 'upstream_connection_error',
    });
  });
});
