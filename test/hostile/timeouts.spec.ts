import { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { createTenant, openaiFor, TestTenant, uniqueTenant } from '../support/api';
import { stackConfig, startApi, stopProcess, waitFor } from '../support/stack';
import { storedFor } from '../support/storage';
import {
  bearer,
  expectAnswer,
  expectRawAnswer,
  hostileSuite,
  itStillServesNormalBatches,
  rawExchange,
  send,
} from './support';
import { TcpProxy } from './tcp-proxy';

const HEADERS_TIMEOUT_MS = 1_000;
const BODY_TIMEOUT_MS = 1_500;
const IDLE_TIMEOUT_MS = 3_000;
const BOUNDARY = 'slow-boundary';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Hostile input over time, and failing dependencies, against an API process of the test's own
 * (short timeouts, one upload at a time per tenant, MinIO behind a proxy the test controls).
 */
describe('hostile: timeouts, upload concurrency and a failing MinIO', () => {
  const suite = hostileSuite('timeouts');
  let api: ChildProcess;
  let baseUrl: string;
  let proxy: TcpProxy;
  let tenant: TestTenant;
  let client: OpenAI;

  beforeAll(async () => {
    const storage = new URL(stackConfig().storage.endpoint);
    proxy = new TcpProxy({ host: storage.hostname, port: Number(storage.port) });
    const proxyPort = await proxy.listen();
    ({ api, url: baseUrl } = await startApi(
      {
        BARGE_API_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        BARGE_API_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
        BARGE_API_STREAM_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
        BARGE_MAX_CONCURRENT_UPLOADS_PER_TENANT: '1',
        BARGE_STORAGE_ENDPOINT: `http://127.0.0.1:${proxyPort}`,
      },
      '/readyz',
    ));
    tenant = await createTenant(uniqueTenant('hostile-timeouts-own'));
    client = openaiFor(tenant.key, { baseUrl, maxRetries: 0 });
  });

  afterEach(() => {
    // This API too must have survived every case.
    expect({ exitCode: api.exitCode, signal: api.signalCode }).toEqual({ exitCode: null, signal: null });
    proxy.mode = 'pass';
  });

  afterAll(async () => {
    await stopProcess(api);
    await proxy.close();
  });

  const head = (line: string, headers: string[]) =>
    `${line}\r\nHost: x\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
  const auth = () => `Authorization: Bearer ${tenant.key}`;
  const uploadHead = (length: number) =>
    head('POST /v1/files HTTP/1.1', [
      auth(),
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}`,
      `Content-Length: ${length}`,
    ]);
  const formStart = (filename: string) =>
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n`;
  const formEnd = `\r\n--${BOUNDARY}--\r\n`;

  it('answers 408 in the envelope when the headers come too slowly, and closes', async () => {
    const result = await rawExchange(['GET /v1/files HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'], {
      baseUrl,
      gapMs: 200,
      waitMs: HEADERS_TIMEOUT_MS * 6,
    });
    expectRawAnswer(result, { status: 408, code: 'request_timeout' });
    expect(result.closedByServer).toBe(true);
  });

  it('answers 408 when an authenticated JSON body trickles, and closes', async () => {
    const start = head('POST /v1/batches HTTP/1.1', [
      auth(),
      'Content-Type: application/json',
      'Content-Length: 1000',
    ]);
    const result = await rawExchange([start, '{"a":', '"b'], {
      baseUrl,
      gapMs: 300,
      waitMs: BODY_TIMEOUT_MS * 4,
    });
    expectRawAnswer(result, { status: 408, code: 'request_timeout' });
    expect(result.closedByServer).toBe(true);
  });

  it('answers 401 at once to an unauthenticated trickling body, then cuts it off', async () => {
    const start = head('POST /v1/batches HTTP/1.1', [
      'Content-Type: application/json',
      'Content-Length: 1000000',
    ]);
    const trickle = Array.from({ length: 30 }, () => 'x');
    const result = await rawExchange([start, ...trickle], {
      baseUrl,
      gapMs: 200,
      waitMs: BODY_TIMEOUT_MS * 4,
    });
    expectRawAnswer(result, { status: 401, code: 'invalid_api_key' });
    expect(result.closedByServer).toBe(true);
  });

  it('lets an upload take longer than the body timeout while it keeps moving', async () => {
    const body = [formStart('slow.txt'), ...Array.from({ length: 8 }, () => 'data'), formEnd];
    const length = Buffer.byteLength(body.join(''));
    // The answer is all this waits for: the connection stays open after it (keep-alive).
    const result = await rawExchange([uploadHead(length), ...body], {
      baseUrl,
      gapMs: 400,
      waitMs: 10_000,
      responses: 1,
    });
    expectRawAnswer(result, { status: 200 });
    const created = JSON.parse(result.responses[0].body) as { id: string; bytes: number };
    expect(created.bytes).toBe(32);
    await client.files.delete(created.id);
  });

  it('cuts an upload that stops moving, leaving nothing behind', async () => {
    const before = await storedFor(tenant.tenantId);
    const result = await rawExchange([uploadHead(10_000), formStart('stalled.txt'), 'some bytes'], {
      baseUrl,
      waitMs: IDLE_TIMEOUT_MS * 4,
    });
    expect(result.closedByServer).toBe(true);
    for (const res of result.responses) expect(res.status).toBeLessThan(500);
    await waitFor(
      'nothing left',
      async () => JSON.stringify(await storedFor(tenant.tenantId)) === JSON.stringify(before),
    );
  });

  it('cuts a download nobody reads once it stops moving', async () => {
    const size = 32 * 1024 * 1024;
    const file = await client.files.create({
      file: await toFile(Buffer.alloc(size, 'd'), 'big.bin'),
      purpose: 'user_data',
    });
    const socket = connect(Number(new URL(baseUrl).port), '127.0.0.1');
    let received = 0;
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    let paused = false;
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (paused) return;
      paused = true;
      socket.pause(); // read the first bytes, then stop reading
    });
    socket.write(head(`GET /v1/files/${file.id}/content HTTP/1.1`, [auth()]));
    await sleep(IDLE_TIMEOUT_MS * 3);
    socket.resume(); // drain what the kernel buffered: the connection must have been cut
    await closed;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(size);
    await client.files.delete(file.id);
  }, 60_000);

  it('answers 429 in the envelope past the per-tenant upload cap, and frees the slot after', async () => {
    const body = [formStart('first.txt'), 'first', formEnd];
    const length = Buffer.byteLength(body.join(''));
    // The first upload holds the tenant's only slot while it sends slowly (gaps well inside
    // the idle timeout); the second comes once the first has surely been admitted.
    const first = rawExchange([uploadHead(length), body[0], body[1], body[2]], {
      baseUrl,
      gapMs: 1_200,
      waitMs: 15_000,
      responses: 1,
    });
    await sleep(800);
    const second = await client.files
      .create({ file: await toFile(Buffer.from('second'), 'second.txt'), purpose: 'user_data' })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(second).toMatchObject({
      status: 429,
      error: { type: 'rate_limit_error', code: 'too_many_concurrent_uploads' },
    });
    expect(Object.keys((second as InstanceType<typeof OpenAI.APIError>).error as object).sort()).toEqual([
      'code',
      'message',
      'param',
      'type',
    ]);
    expectRawAnswer(await first, { status: 200 });
    const third = await client.files.create({
      file: await toFile(Buffer.from('third'), 'third.txt'),
      purpose: 'user_data',
    });
    expect(third.bytes).toBe(5);
  });

  it('answers 503 for uploads and downloads while MinIO is down, and recovers', async () => {
    const kept = await client.files.create({
      file: await toFile(Buffer.from('kept'), 'kept.txt'),
      purpose: 'user_data',
    });
    const before = await storedFor(tenant.tenantId);
    proxy.mode = 'down';
    proxy.cutAll();
    const upload = await client.files
      .create({ file: await toFile(Buffer.from('{"a":1}\n'), 'in.jsonl'), purpose: 'batch' })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(upload).toMatchObject({
      status: 503,
      error: { code: 'service_unavailable', type: 'server_error' },
    });
    const download = await send('GET', `/v1/files/${kept.id}/content`, {
      baseUrl,
      headers: bearer(tenant.key),
    });
    expect(download.status).toBe(503);
    expect(JSON.parse(download.text)).toMatchObject({ error: { code: 'service_unavailable' } });

    proxy.mode = 'pass';
    expect(await storedFor(tenant.tenantId)).toEqual(before);
    expect(await (await client.files.content(kept.id)).text()).toBe('kept');
  });

  it('answers 503 when MinIO drops the connection mid-upload, leaving no unfinished upload', async () => {
    const before = await storedFor(tenant.tenantId);
    proxy.mode = 'cut-large';
    proxy.cutAfterBytes = 2 * 1024 * 1024;
    const answer = await client.files
      .create({ file: await toFile(Buffer.alloc(20 * 1024 * 1024, 'u'), 'big.bin'), purpose: 'user_data' })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(answer).toMatchObject({ status: 503, error: { code: 'service_unavailable' } });
    proxy.mode = 'pass';
    await waitFor(
      'nothing left',
      async () => JSON.stringify(await storedFor(tenant.tenantId)) === JSON.stringify(before),
    );
  });

  it('still serves after all of it', async () => {
    expectAnswer(await send('GET', '/v1/files?limit=1', { baseUrl, headers: bearer(tenant.key) }), {
      status: 200,
    });
    expectAnswer(await send('GET', '/readyz', { baseUrl }), { status: 200 });
  });

  itStillServesNormalBatches(suite);
});
