import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { UsageError } from './io';

/**
 * The CLI's client for any OpenAI-compatible Batch API (Barge, OpenAI, the hosted peers): plain
 * fetch for JSON calls. File bodies go through undici's request(), as Node streams with
 * backpressure both ways and bounded buffers: an upload reads the file only as fast as the
 * socket takes it, a download reads the socket only as fast as the disk takes it
 * (test/unit/cli-api-client.spec.ts stalls the peer and checks that reading stops).
 */

/** How much of a file may wait in one stage of an upload or a download. */
const FILE_STREAM_HIGH_WATER = 256 * 1024;

/** Options every command that calls the API accepts (parseArgs style). */
export const API_OPTIONS = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
} as const;

export const DEFAULT_BASE_URL = 'http://127.0.0.1:8000/v1';

export const API_OPTIONS_USAGE = `  --base-url URL    the API, with its version: BARGE_BASE_URL, else OPENAI_BASE_URL,
                    else ${DEFAULT_BASE_URL} (a local \`npm run up\`)
  --api-key KEY     BARGE_API_KEY, else OPENAI_API_KEY (prefer the variables: a flag is
                    visible to other users in the process list)`;

export interface ApiTarget {
  /** Without a trailing slash, e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  apiKey: string;
}

/** Where to send requests and with which key: flags first, then Barge's variables, then OpenAI's. */
export function resolveTarget(
  values: { 'base-url'?: string; 'api-key'?: string },
  env: Record<string, string | undefined>,
): ApiTarget {
  const nonEmpty = (v: string | undefined) => (v && v.trim() !== '' ? v.trim() : undefined);
  const baseUrl =
    nonEmpty(values['base-url']) ??
    nonEmpty(env.BARGE_BASE_URL) ??
    nonEmpty(env.OPENAI_BASE_URL) ??
    DEFAULT_BASE_URL;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError(`invalid base URL "${baseUrl}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`the base URL must be http or https, not "${url.protocol}"`);
  }
  const apiKey = nonEmpty(values['api-key']) ?? nonEmpty(env.BARGE_API_KEY) ?? nonEmpty(env.OPENAI_API_KEY);
  if (!apiKey) throw new UsageError('no API key: set BARGE_API_KEY (or OPENAI_API_KEY), or pass --api-key');
  return { baseUrl: baseUrl.replace(/\/+$/, ''), apiKey };
}

/** An answer that is not 2xx, with the fields of OpenAI's error envelope when it has one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** Worth polling again: the server or the network, not the request. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The fields of OpenAI's Batch object the CLI reads (any compatible server sends them). */
export interface Batch {
  id: string;
  status: string;
  endpoint: string;
  model?: string | null;
  input_file_id: string;
  completion_window: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  created_at: number;
  in_progress_at?: number | null;
  errors?: { data?: { code?: string; message?: string; line?: number | null }[] } | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
  metadata?: Record<string, string> | null;
}

export interface FileObject {
  id: string;
  bytes: number;
  filename: string;
}

export interface BatchList {
  data: Batch[];
  has_more: boolean;
  last_id?: string | null;
}

export const TERMINAL_STATUSES = ['completed', 'failed', 'expired', 'cancelled'];

/** JSON calls are small: a server that does not answer within this is down for our purposes. */
const JSON_TIMEOUT_MS = 60_000;

type Fetch = typeof fetch;

export class ApiClient {
  constructor(
    readonly target: ApiTarget,
    private readonly fetchImpl: Fetch = fetch,
  ) {}

  url(path: string): string {
    return `${this.target.baseUrl}${path}`;
  }

  private unreachable(err: unknown): ApiError {
    const { code, message, cause } = err as {
      code?: string;
      message?: string;
      cause?: { code?: string; message?: string };
    };
    return new ApiError(
      0,
      `cannot reach ${this.target.baseUrl}: ${cause?.code ?? cause?.message ?? code ?? message}`,
    );
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path), {
        ...init,
        headers: {
          Authorization: `Bearer ${this.target.apiKey}`,
          ...(init.headers as Record<string, string>),
        },
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (!res.ok) throw errorOf(res.status, res.statusText, await res.text().catch(() => ''));
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(JSON_TIMEOUT_MS),
    });
    return (await res.json()) as T;
  }

  /**
   * A request with a file's bytes in its body or its answer, through undici's request() (Node
   * streams, bounded buffers): an error answer becomes an ApiError, its body read; a success
   * is returned with its body unread.
   */
  private async fileRequest(
    path: string,
    options: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: Readable },
  ): Promise<Dispatcher.ResponseData> {
    let res;
    try {
      res = await request(this.url(path), {
        ...options,
        headers: { Authorization: `Bearer ${this.target.apiKey}`, ...options.headers },
        highWaterMark: FILE_STREAM_HIGH_WATER,
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw errorOf(res.statusCode, '', await res.body.text().catch(() => ''));
    }
    return res;
  }

  /**
   * Uploads a file as `purpose` in a multipart form streamed from disk, with its exact
   * Content-Length (some servers refuse chunked uploads). `onBytes` sees the file's bytes go.
   */
  async upload(
    path: string,
    purpose: string,
    onBytes?: (sent: number, total: number) => void,
  ): Promise<FileObject> {
    const { size } = await stat(path);
    const boundary = `barge-${randomBytes(12).toString('hex')}`;
    // HTML's rule for names in a form: quotes and line breaks percent-encoded.
    const filename = basename(path).replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
        'Content-Type: application/jsonl\r\n\r\n',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    let sent = 0;
    async function* form() {
      yield head;
      for await (const chunk of createReadStream(path, { highWaterMark: FILE_STREAM_HIGH_WATER })) {
        sent += (chunk as Buffer).length;
        onBytes?.(sent, size);
        yield chunk as Buffer;
      }
      yield tail;
    }
    const res = await this.fileRequest('/files', {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(head.length + size + tail.length),
      },
      // Bytes, not objects: the stream's buffer is bounded by size, not by a count of chunks.
      body: Readable.from(form(), { objectMode: false, highWaterMark: FILE_STREAM_HIGH_WATER }),
    });
    return JSON.parse(await res.body.text()) as FileObject;
  }

  /**
   * Streams a file's content to `dest` (through `dest.part`, renamed once complete, so a cut
   * download never looks finished). Returns the bytes written.
   */
  async download(
    fileId: string,
    dest: string,
    onBytes?: (received: number, total: number | null) => void,
  ): Promise<number> {
    const res = await this.fileRequest(`/files/${encodeURIComponent(fileId)}/content`, { method: 'GET' });
    const header = res.headers['content-length'];
    const total = typeof header === 'string' ? Number(header) : null;
    const part = `${dest}.part`;
    let received = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        onBytes?.(received, total);
        done(null, chunk);
      },
    });
    try {
      await pipeline(res.body, count, createWriteStream(part, { highWaterMark: FILE_STREAM_HIGH_WATER }));
      if (total !== null && received !== total) {
        throw new ApiError(0, `the download of ${fileId} ended after ${received} of ${total} bytes`);
      }
      await rename(part, dest);
    } catch (err) {
      await rm(part, { force: true });
      if (err instanceof ApiError) throw err;
      throw new ApiError(0, `downloading ${fileId} failed: ${(err as Error).message}`);
    }
    return received;
  }
}

/** The error an answer's body describes (OpenAI's envelope), or its status line when it has none. */
function errorOf(status: number, statusText: string, text: string): ApiError {
  let error: { message?: unknown; code?: unknown } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    // Not JSON (a proxy's page): the status line says enough.
  }
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status} ${statusText}`.trim();
  const code = typeof error?.code === 'string' ? error.code : null;
  return new ApiError(status, message, code);
}
