import { errors as undiciErrors, Pool, type Dispatcher } from 'undici';
import { abortError, onAbort } from './abort';
import type { Upstream } from './registry';
import type { Secret } from './secret';

/** One attempt of one request, as the gateway hands it to a transport. */
export interface AttemptRequest {
  /** One of the batch endpoints, e.g. '/v1/chat/completions'. */
  endpoint: string;
  /** The JSON body, model already rewritten for this upstream. */
  body: string;
  requestId: string;
  signal: AbortSignal;
  /** The tenant's own key for this upstream: sent instead of the configured one, and redacted too. */
  apiKey?: Secret;
}

export type NoAnswerCode = 'upstream_connection_error' | 'upstream_timeout' | 'upstream_response_too_large';

export type AttemptResponse =
  | {
      kind: 'response';
      status: number;
      /** Lower-case names; repeated headers joined with ", ". */
      headers: Record<string, string | undefined>;
      /** The body as received, credentials redacted. */
      text: string;
      /** `text` parsed as JSON, or `text` itself when it is not JSON. */
      body: unknown;
      /** Milliseconds from sending to the response headers, when the transport measures it. */
      firstByteMs?: number;
    }
  | { kind: 'no-answer'; code: NoAnswerCode; message: string };

/** Sends attempts to one upstream. send() rejects only with an AbortError, when the signal aborts. */
export interface UpstreamTransport {
  send(request: AttemptRequest): Promise<AttemptResponse>;
  close(): Promise<void>;
}

/**
 * Memory for answers being read (a worker-wide ByteBudget): an answer's body is read only
 * once its room is granted, so however many calls are in flight, the answers in memory at
 * once stay bounded; the others wait in their sockets (the kernel's buffers, and the
 * upstream's). Room is given back once the answer is parsed; from there on its output line
 * is charged while it waits to be recorded (OutcomeBuffer).
 */
export interface AnswerMemory {
  /** The room at once, when it is free and nobody waits for it; else null. */
  tryAcquire(bytes: number): (() => void) | null;
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void>;
}

/** Memory an answer takes while read, per byte: the socket's chunks, their concatenation, the text. */
export const ANSWER_READ_MEMORY_PER_BYTE = 3;
/** An answer of unknown length (no content-length) is let in as this many bytes. */
export const UNKNOWN_ANSWER_BYTES = 64 * 1024;

/** Larger answers are refused rather than buffered (an embeddings batch reply is far smaller). */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
/**
 * Idle keep-alive sockets are closed after this long: shorter than Node servers' 5 s
 * keep-alive timeout, so the client closes first and never writes into a socket the server
 * is closing (which would fail the request with ECONNRESET).
 */
const IDLE_SOCKET_MS = 4_000;

function flatHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name in headers) {
    const value = headers[name];
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function answerBytes(contentLength: string | undefined): number {
  const n = Number(contentLength);
  return contentLength !== undefined && Number.isSafeInteger(n) && n >= 0
    ? Math.min(n, MAX_RESPONSE_BYTES)
    : UNKNOWN_ANSWER_BYTES;
}

function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * undici's Pool, one per upstream: keep-alive connections up to the upstream's concurrency
 * limit (the limiter bounds requests in flight; the pool only has to hold them), no
 * pipelining. `timeoutMs` bounds the wait for the answer's headers and each wait for more of
 * its body.
 */
export class HttpUpstream implements UpstreamTransport {
  // Private fields: both hold the Authorization header, so no dump of the transport shows it.
  readonly #pool: Pool;
  readonly #headers: Record<string, string>;
  private readonly paths = new Map<string, string>();

  constructor(
    private readonly upstream: Upstream,
    private readonly memory?: AnswerMemory,
  ) {
    this.#pool = new Pool(upstream.baseUrl.origin, {
      connections: upstream.limits.maxConcurrency,
      pipelining: 1,
      keepAliveTimeout: IDLE_SOCKET_MS,
      keepAliveMaxTimeout: IDLE_SOCKET_MS,
      headersTimeout: upstream.timeoutMs,
      bodyTimeout: upstream.timeoutMs,
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
    this.#headers = {
      ...upstream.headers,
      'content-type': 'application/json',
      accept: 'application/json',
    };
  }

  send(request: AttemptRequest): Promise<AttemptResponse> {
    const { signal, apiKey } = request;
    if (signal.aborted) return Promise.reject(abortError(signal));
    const headers: Record<string, string> = { ...this.#headers, 'x-barge-request-id': request.requestId };
    if (apiKey) headers.authorization = `Bearer ${apiKey.reveal()}`;
    return new Promise((resolve, reject) => {
      const exchange = new Exchange(signal, this.memory, {
        answered: (answer) => {
          const text = this.redact(answer.text, apiKey);
          resolve({ kind: 'response', ...answer, text, body: parseBody(text) });
        },
        failed: (error) => resolve(this.noAnswer(error, (text) => this.redact(text, apiKey))),
        aborted: () => reject(abortError(signal)),
      });
      this.#pool.dispatch(
        { path: this.path(request.endpoint), method: 'POST', headers, body: request.body },
        exchange,
      );
    });
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }

  private noAnswer(error: unknown, message: (text: string) => string): AttemptResponse {
    const name = this.upstream.name;
    if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
      return {
        kind: 'no-answer',
        code: 'upstream_timeout',
        message: `upstream ${name} did not answer within ${this.upstream.timeoutMs} ms`,
      };
    }
    if (error instanceof undiciErrors.ResponseExceededMaxSizeError) {
      return {
        kind: 'no-answer',
        code: 'upstream_response_too_large',
        message: `upstream ${name} answered with more than ${MAX_RESPONSE_BYTES} bytes`,
      };
    }
    const detail = error instanceof Error ? error.message : String(error);
    return {
      kind: 'no-answer',
      code: 'upstream_connection_error',
      message: message(`connection to upstream ${name} failed: ${detail}`),
    };
  }

  private redact(text: string, apiKey: Secret | undefined): string {
    return this.upstream.redact(apiKey ? apiKey.redact(text) : text);
  }

  /** Base URL path (which carries the version, e.g. /v1) plus the endpoint; nothing from a request. */
  private path(endpoint: string): string {
    let path = this.paths.get(endpoint);
    if (path === undefined) {
      const url = this.upstream.url(endpoint);
      path = url.pathname + url.search;
      this.paths.set(endpoint, path);
    }
    return path;
  }
}

/** An answer as read off the wire, before redaction and parsing. */
interface RawAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  text: string;
  firstByteMs: number;
}

/** How an Exchange ends: exactly one of these is called, once. */
interface ExchangeEnd {
  answered(answer: RawAnswer): void;
  /** No answer (connection, timeout, size): the transport's error. */
  failed(error: unknown): void;
  /** The call's signal aborted. */
  aborted(): void;
}

/**
 * One request on undici's dispatch API, read straight into a buffer: no response stream, no
 * listener of its own on the call's signal (which a chunk's calls share), and its answer's
 * body read only once the answer memory has room for it (undici stops reading the socket
 * while the exchange is paused).
 */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly sentAt = performance.now();
  private controller: Dispatcher.DispatchController | null = null;
  private done = false;
  private chunks: Buffer[] = [];
  private status = 0;
  private headers: Record<string, string | undefined> = {};
  private firstByteMs = 0;
  private release: (() => void) | null = null;
  private readonly unwatch: () => void;

  constructor(
    private readonly signal: AbortSignal,
    private readonly memory: AnswerMemory | undefined,
    private readonly end: ExchangeEnd,
  ) {
    this.unwatch = onAbort(signal, () => {
      // Queued in the pool, the request has no controller yet: onRequestStart aborts it.
      this.controller?.abort(abortError(signal));
      this.finish(() => end.aborted());
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.chunks = []; // undici may start a request again when the one before it on the socket failed
    if (this.done) controller.abort(abortError(this.signal));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // undici calls this at the answer's headers: the time to first byte.
    this.firstByteMs = performance.now() - this.sentAt;
    this.status = status;
    this.headers = flatHeaders(headers);
    if (!this.memory) return;
    const bytes = answerBytes(this.headers['content-length']) * ANSWER_READ_MEMORY_PER_BYTE;
    this.release = this.memory.tryAcquire(bytes);
    if (this.release) return;
    controller.pause();
    this.memory.acquire(bytes, this.signal).then(
      (release) => {
        if (this.done) return release();
        this.release = release;
        controller.resume();
      },
      // Aborted: the signal's watcher ends the exchange.
      () => undefined,
    );
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const { chunks } = this;
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    let text = body.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM, as undici's body.text() drops it
    const answer: RawAnswer = {
      status: this.status,
      headers: this.headers,
      text,
      firstByteMs: this.firstByteMs,
    };
    this.finish(() => this.end.answered(answer));
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.finish(() => (this.signal.aborted ? this.end.aborted() : this.end.failed(error)));
  }

  private finish(end: () => void): void {
    if (this.done) return;
    this.done = true;
    this.unwatch();
    this.chunks = [];
    try {
      end();
    } finally {
      // Given back once the answer is parsed (end() parses it), not before.
      this.release?.();
      this.release = null;
    }
  }
}
