import { errors as undiciErrors, Pool } from 'undici';
import { abortError } from './abort';
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

  async send({ endpoint, body, requestId, signal, apiKey }: AttemptRequest): Promise<AttemptResponse> {
    if (signal.aborted) throw abortError(signal);
    const redact = (text: string) => this.upstream.redact(apiKey ? apiKey.redact(text) : text);
    try {
      const sentAt = performance.now();
      const headers: Record<string, string> = { ...this.#headers, 'x-barge-request-id': requestId };
      if (apiKey) headers.authorization = `Bearer ${apiKey.reveal()}`;
      const res = await this.#pool.request({
        path: this.path(endpoint),
        method: 'POST',
        headers,
        body,
        signal,
      });
      // undici resolves request() at the headers: this is the time to first byte.
      const firstByteMs = performance.now() - sentAt;
      const answerHeaders = flatHeaders(res.headers);
      const release = await this.memory
        ?.acquire(answerBytes(answerHeaders['content-length']) * ANSWER_READ_MEMORY_PER_BYTE, signal)
        .catch((error: unknown) => {
          res.body.destroy();
          throw error;
        });
      try {
        const text = redact(await res.body.text());
        return {
          kind: 'response',
          status: res.statusCode,
          headers: answerHeaders,
          text,
          body: parseBody(text),
          firstByteMs,
        };
      } finally {
        release?.();
      }
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      return this.noAnswer(error, redact);
    }
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
