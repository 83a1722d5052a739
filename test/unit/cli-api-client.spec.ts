import busboy from 'busboy';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ApiError, DEFAULT_BASE_URL, resolveTarget } from '../../src/cli/api-client';
import { UsageError } from '../../src/cli/io';

describe('CLI target', () => {
  it("takes flags, then Barge's variables, then OpenAI's, then the local default", () => {
    const env = {
      BARGE_BASE_URL: 'http://barge:8000/v1/',
      BARGE_API_KEY: 'sk-barge',
      OPENAI_BASE_URL: 'https://api.openai.com/v1',
      OPENAI_API_KEY: 'sk-openai',
    };
    expect(resolveTarget({ 'base-url': 'http://flag/v1', 'api-key': 'sk-flag' }, env)).toEqual({
      baseUrl: 'http://flag/v1',
      apiKey: 'sk-flag',
    });
    expect(resolveTarget({}, env)).toEqual({ baseUrl: 'http://barge:8000/v1', apiKey: 'sk-barge' });
    expect(resolveTarget({}, { OPENAI_BASE_URL: env.OPENAI_BASE_URL, OPENAI_API_KEY: 'sk-openai' })).toEqual({
      baseUrl: 'https://api.openai.com/v1',
      apiKey: 'sk-openai',
    });
    expect(resolveTarget({}, { BARGE_BASE_URL: '', OPENAI_API_KEY: 'k' })).toEqual({
      baseUrl: DEFAULT_BASE_URL,
      apiKey: 'k',
    });
  });

  it.each([
    [{}, {}, /no API key/],
    [{ 'base-url': 'not a url' }, { BARGE_API_KEY: 'k' }, /invalid base URL/],
    [{ 'base-url': 'ftp://host/v1' }, { BARGE_API_KEY: 'k' }, /http or https/],
  ])('refuses %j with %j', (values, env, message) => {
    expect(() => resolveTarget(values, env)).toThrow(UsageError);
    expect(() => resolveTarget(values, env)).toThrow(message);
  });
});

describe('CLI client (against a loopback server)', () => {
  let server: Server;
  let base: string;
  let dir: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void;

  beforeAll(async () => {
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    dir = await mkdtemp(join(tmpdir(), 'barge-cli-'));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const client = () => new ApiClient({ baseUrl: base, apiKey: 'sk-test' });

  it('uploads a multipart form streamed from disk, with its exact length', async () => {
    const content = Array.from({ length: 5000 }, (_, i) => `{"custom_id":"r${i}"}`).join('\n') + '\n';
    const path = join(dir, 'my "input".jsonl');
    await writeFile(path, content);
    let seen:
      | {
          fields: Record<string, string>;
          file: string;
          filename: string;
          headers: IncomingMessage['headers'];
        }
      | undefined;
    handler = (req, res) => {
      const fields: Record<string, string> = {};
      const chunks: Buffer[] = [];
      let filename = '';
      const form = busboy({ headers: req.headers });
      form.on('field', (name, value) => (fields[name] = value));
      form.on('file', (_name, stream, info) => {
        filename = info.filename ?? '';
        stream.on('data', (c: Buffer) => chunks.push(c));
      });
      form.on('close', () => {
        seen = { fields, file: Buffer.concat(chunks).toString(), filename, headers: req.headers };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id: 'file-1', bytes: content.length, filename }));
      });
      req.pipe(form);
    };
    const progress: number[] = [];
    const uploaded = await client().upload(path, 'batch', (sent) => progress.push(sent));
    expect(uploaded).toEqual({ id: 'file-1', bytes: content.length, filename: 'my %22input%22.jsonl' });
    expect(seen!.fields).toEqual({ purpose: 'batch' });
    expect(seen!.file).toBe(content);
    expect(seen!.headers.authorization).toBe('Bearer sk-test');
    expect(seen!.headers['transfer-encoding']).toBeUndefined();
    expect(Number(seen!.headers['content-length'])).toBeGreaterThan(content.length);
    expect(progress[progress.length - 1]).toBe(content.length);
  });

  it('streams a download to its file, and leaves no file when the download is cut', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 'x');
    handler = (req, res) => {
      if (req.url!.includes('cut')) {
        res.writeHead(200, { 'content-length': String(body.length) });
        res.write(body.subarray(0, 1024));
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    };
    const dest = join(dir, 'out.jsonl');
    await expect(client().download('file-ok', dest)).resolves.toBe(body.length);
    expect((await readFile(dest)).equals(body)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);

    const cut = join(dir, 'cut.jsonl');
    await expect(client().download('file-cut', cut)).rejects.toBeInstanceOf(ApiError);
    expect(existsSync(cut)).toBe(false);
    expect(existsSync(`${cut}.part`)).toBe(false);
  });

  // Backpressure, both ways: with a peer that stops taking bytes, the client stops reading
  // (from disk on upload, from the socket on download) once its bounded buffers are full,
  // instead of holding the file. What the kernel's socket buffers take on loopback is a few MiB.
  const FILE = 128 * 1024 * 1024;
  const AT_MOST_BUFFERED = 24 * 1024 * 1024;
  const settle = () => new Promise((r) => setTimeout(r, 500));

  it('stops reading the file while the server does not read the upload', async () => {
    const path = join(dir, 'stalled-upload.jsonl');
    await writeFile(path, '');
    await truncate(path, FILE); // sparse: no disk
    let received = 0;
    let stalledOnce = false;
    let stalled!: IncomingMessage;
    const reachedStall = new Promise<void>((resolve) => {
      handler = (req, res) => {
        stalled = req;
        req.on('data', (c: Buffer) => {
          received += c.length;
          if (received >= 1024 * 1024 && !stalledOnce) {
            stalledOnce = true;
            req.pause();
            resolve();
          }
        });
        req.on('end', () => res.end(JSON.stringify({ id: 'file-stalled', bytes: FILE })));
      };
    });
    let sent = 0;
    const upload = client().upload(path, 'batch', (n) => (sent = n));
    await reachedStall;
    await settle();
    const readWhileStalled = sent;
    await settle();
    expect(sent).toBe(readWhileStalled); // it waits rather than reading on
    expect(sent - received).toBeLessThan(AT_MOST_BUFFERED);
    stalled.resume();
    await expect(upload).resolves.toMatchObject({ id: 'file-stalled' });
    expect(received).toBeGreaterThan(FILE);
  });

  it('stops reading the socket while the download cannot be written out', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(FILE) });
      let sent = 0;
      const pump = () => {
        while (sent < FILE) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    };
    // The download's destination is a pipe the test reads from, so the test decides how fast
    // the "disk" takes bytes: not at all, then as fast as it can.
    const dest = join(dir, 'stalled-download.jsonl');
    execFileSync('mkfifo', [`${dest}.part`]);
    let got = 0;
    const download = client().download('file-big', dest, (n) => (got = n));
    const reader = await open(`${dest}.part`, 'r');
    await settle();
    const readWhileStalled = got;
    await settle();
    expect(got).toBe(readWhileStalled);
    expect(got).toBeLessThan(AT_MOST_BUFFERED);
    const buffer = Buffer.alloc(1024 * 1024);
    let drained = 0;
    for (;;) {
      const { bytesRead } = await reader.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      drained += bytesRead;
    }
    await reader.close();
    await expect(download).resolves.toBe(FILE);
    expect(drained).toBe(FILE);
  });

  it('turns an error envelope, a non-JSON answer and no server into ApiErrors', async () => {
    handler = (req, res) => {
      if (req.url!.includes('proxy')) {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { message: 'No such Batch object: b', type: 'invalid_request_error', code: null },
        }),
      );
    };
    await expect(client().json('GET', '/batches/b')).rejects.toMatchObject({
      status: 404,
      message: 'No such Batch object: b',
      transient: false,
    });
    await expect(client().json('GET', '/proxy')).rejects.toMatchObject({ status: 502, transient: true });
    const nowhere = new ApiClient({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k' });
    await expect(nowhere.json('GET', '/batches')).rejects.toMatchObject({ status: 0, transient: true });
  });
});
