import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { createTenant, openaiFor, TestTenant, uniqueTenant } from '../support/api';
import { chatLine, submitBatch, waitForStatus } from '../support/batches';
import { alive, readPid } from '../support/pids';
import { apiUrl, ROOT } from '../support/stack';

/**
 * The hostile-input suite's tools: a plain HTTP client that sends exactly what it is told, a
 * raw-socket client for what no HTTP library will send, the checks every case makes (below
 * 500, OpenAI's envelope on every 4xx, the stack's processes unchanged) and the closing check
 * of every file (a normal batch still completes, no batch is left unfinished).
 */

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Default: the test stack's API. */
  baseUrl?: string;
}

/** One request with node:http, which sends the path as given (no normalising, no re-encoding). */
export function send(method: string, path: string, options: SendOptions = {}): Promise<Answer> {
  const url = new URL(options.baseUrl ?? apiUrl());
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawResult {
  /** Every complete response read, in order (pipelined requests get several). */
  responses: RawResponse[];
  /** Whether the server closed the connection before we gave up waiting. */
  closedByServer: boolean;
  /** Bytes that did not form a complete response. */
  rest: string;
}

/**
 * Writes `parts` to a fresh TCP connection to the API (pausing `gapMs` between them), then
 * reads until the server closes, `waitMs` passes or `responses` complete responses arrived.
 * For bytes no HTTP client would send.
 */
export async function rawExchange(
  parts: (string | Buffer)[],
  options: {
    baseUrl?: string;
    gapMs?: number;
    waitMs?: number;
    endAfterWrite?: boolean;
    /** Stop waiting once this many complete responses arrived (for a server that keeps the connection open). */
    responses?: number;
  } = {},
): Promise<RawResult> {
  const url = new URL(options.baseUrl ?? apiUrl());
  const socket = connect(Number(url.port), url.hostname);
  const received: Buffer[] = [];
  let closedByServer = false;
  let answered: () => void = () => undefined;
  const enough = new Promise<void>((resolve) => (answered = resolve));
  const closed = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      received.push(d);
      const wanted = options.responses;
      if (wanted && parseResponses(Buffer.concat(received)).responses.length >= wanted) answered();
    });
    socket.on('error', () => undefined); // a reset is an answer too: the server cut us off
    socket.on('close', () => resolve());
    socket.on('end', () => (closedByServer = true));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (const part of parts) {
    if (socket.destroyed) break;
    socket.write(part);
    if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
  }
  if (options.endAfterWrite) socket.end();
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.waitMs ?? 3_000)));
  await Promise.race([closed, waited, enough]);
  clearTimeout(timer);
  if (!socket.destroyed) {
    closedByServer = closedByServer || socket.readableEnded;
    socket.destroy();
  } else {
    closedByServer = true;
  }
  return { ...parseResponses(Buffer.concat(received)), closedByServer };
}

/** Splits raw bytes into HTTP/1.1 responses (Content-Length or chunked bodies). */
export function parseResponses(data: Buffer): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const [statusLine, ...lines] = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) break;
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyStart = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const pieces: Buffer[] = [];
      for (;;) {
        const sizeEnd = data.indexOf('\r\n', bodyStart);
        if (sizeEnd === -1) return { responses, rest: data.subarray(at).toString() };
        const size = parseInt(data.subarray(bodyStart, sizeEnd).toString(), 16);
        if (Number.isNaN(size)) return { responses, rest: data.subarray(at).toString() };
        bodyStart = sizeEnd + 2;
        if (size === 0) {
          bodyStart += 2;
          break;
        }
        pieces.push(data.subarray(bodyStart, bodyStart + size));
        bodyStart += size + 2;
      }
      body = Buffer.concat(pieces);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (bodyStart + length > data.length) break;
      body = data.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    }
    responses.push({ status, headers, body: body.toString() });
    at = bodyStart;
  }
  return { responses, rest: data.subarray(at).toString() };
}

export interface Expected {
  status: number;
  code?: string | null;
  param?: string | null;
  type?: string;
}

/**
 * The rules for every answer: below 500, and every 4xx in OpenAI's envelope with all four
 * keys (message a non-empty string, type a string, param and code strings or null). Then the
 * case's own expectations. Returns the parsed body.
 */
export function expectAnswer(
  answer: { status: number; text: string; headers?: Record<string, unknown> },
  expected: Expected,
): Record<string, unknown> {
  expect(answer.status).toBeLessThan(500);
  let body: Record<string, unknown> = {};
  if (answer.status >= 400) body = expectEnvelope(answer.text, answer.headers?.['content-type']);
  else if (answer.text) body = JSON.parse(answer.text) as Record<string, unknown>;
  const summary = {
    status: answer.status,
    ...(expected.code !== undefined && { code: (body.error as Record<string, unknown>)?.code }),
    ...(expected.param !== undefined && { param: (body.error as Record<string, unknown>)?.param }),
    ...(expected.type !== undefined && { type: (body.error as Record<string, unknown>)?.type }),
  };
  expect({ summary, message: (body.error as Record<string, unknown>)?.message }).toMatchObject({
    summary: expected,
  });
  return body;
}

/** The error envelope, exactly: an object with one key `error` holding the four keys. */
export function expectEnvelope(text: string, contentType?: unknown): Record<string, unknown> {
  if (contentType !== undefined) expect(String(contentType)).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.message).toBe('string');
  expect((body.error.message as string).length).toBeGreaterThan(0);
  expect(typeof body.error.type).toBe('string');
  for (const key of ['param', 'code']) {
    expect(body.error[key] === null || typeof body.error[key] === 'string').toBe(true);
  }
  return body;
}

/** Checks a raw exchange: every response read follows the rules; `status` is the first one's. */
export function expectRawAnswer(result: RawResult, expected: Expected): void {
  expect(result.responses.length).toBeGreaterThan(0);
  for (const res of result.responses) {
    expect(res.status).toBeLessThan(500);
    if (res.status >= 400) expectEnvelope(res.body, res.headers['content-type']);
  }
  const first = result.responses[0];
  expectAnswer({ status: first.status, text: first.body, headers: first.headers }, expected);
}

const RUN = join(ROOT, '.barge', 'test', 'run');

export interface StackPids {
  api: number;
  worker: number;
}

/** The test stack's API and worker processes, from the pid files stack.sh keeps. */
export function stackPids(): StackPids {
  const read = (name: string) => {
    const file = join(RUN, `${name}.pid`);
    if (!existsSync(file)) throw new Error(`no ${file}: is the test stack (npm test) running?`);
    return readPid(file);
  };
  return { api: read('api'), worker: read('worker') };
}

/**
 * Registers what every hostile file needs: a tenant of its own, and after every case the
 * check that the stack's API and worker are the very processes they were (a crash would show
 * as a new pid: the supervisor restarts what dies).
 */
export function hostileSuite(prefix: string): {
  tenant: () => TestTenant;
  client: () => OpenAI;
  ready: () => Promise<TestTenant>;
} {
  let tenant: TestTenant | undefined;
  let client: OpenAI | undefined;
  let before: StackPids | undefined;
  let setup: Promise<TestTenant> | undefined;
  // Made once, by the first to ask: the beforeAll below, or a concurrent case (Jest starts those
  // before any describe-level beforeAll). The pids are read first, before any case sends anything.
  const ready = (): Promise<TestTenant> => {
    if (!setup) {
      before = stackPids();
      setup = createTenant(uniqueTenant(`hostile-${prefix}`));
    }
    return setup;
  };
  beforeAll(async () => {
    tenant = await ready();
    client = openaiFor(tenant.key, { maxRetries: 0 });
  });
  afterEach(() => {
    const now = stackPids();
    expect(now).toEqual(before);
    expect({ api: alive(now.api), worker: alive(now.worker) }).toEqual({ api: true, worker: true });
  });
  return {
    tenant: () => tenant!,
    client: () => client!,
    ready,
  };
}

const TERMINAL: Batch['status'][] = ['completed', 'failed', 'expired', 'cancelled'];

/** Every batch of the client's tenant, waiting for each to reach a terminal status. */
export async function expectAllBatchesEnded(client: OpenAI): Promise<Batch[]> {
  const batches: Batch[] = [];
  for await (const batch of client.batches.list({ limit: 100 })) batches.push(batch);
  const ended = await Promise.all(batches.map((b) => waitForStatus(client, b.id, TERMINAL, 120_000)));
  for (const b of ended) expect(TERMINAL).toContain(b.status);
  return ended;
}

/**
 * The closing case of every hostile file: after everything it sent, no batch of its tenant is
 * left unfinished (and there are as many as its cases created) and a normal batch still goes
 * through to `completed`.
 */
export function itStillServesNormalBatches(
  suite: { client: () => OpenAI },
  batchesCreated: number | { atLeast: number } = 0,
): void {
  it('leaves no batch unfinished, and a normal batch still completes', async () => {
    const client = suite.client();
    const ended = await expectAllBatchesEnded(client);
    // The cases created exactly the batches they meant to (none, for most files).
    if (typeof batchesCreated === 'number') expect(ended.length).toBe(batchesCreated);
    else expect(ended.length).toBeGreaterThanOrEqual(batchesCreated.atLeast);
    const normal = await submitBatch(client, [chatLine('after-1'), chatLine('after-2')]);
    const done = await waitForStatus(client, normal.id, TERMINAL, 60_000);
    expect(done).toMatchObject({
      status: 'completed',
      request_counts: { total: 2, completed: 2, failed: 0 },
    });
  }, 180_000);
}
