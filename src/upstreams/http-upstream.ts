import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { abortError } from './abort';
import type { Upstream } from './registry';

/** One attempt of one request, as the gateway hands it to a transport. */
export interface AttemptRequest {
  /** One of the batch endpoints, e.g. '/v1/chat/completions'. */
  endpoint: string;
  /** The JSON body, model already rewritten for this upstream. */
  body: string;
  requestId: string;
  signal: AbortSignal;
}

export type NoAnswerCode = 'upstream_connection_error' | 'upstream_timeout' | 'upstream_response_too_large';

export type AttemptResponse =
  | {
      kind: 'response';
      status: number;
      /** Lower-case names; repeated headers joined with ", ". */
      headers: Record<string, string | undefined>;
      /** Parsed JSON, or the raw text when it is not JSON; credentials redacted either way. */
      body: unknown;
    }
  | { kind: 'no-answer'; code: NoAnswerCode; message: string };

/** Sends attempts to one upstream. send() rejects only with an AbortError, when the signal aborts. */
export interface UpstreamTransport {
  send(request: AttemptRequest): Promise<AttemptResponse>;
  close(): Promise<void>;
}

/** Larger answers are refused rather than buffered (an embeddings batch reply is far smaller). */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
/**
 * Idle keep-alive sockets are closed after this long: shorter than Node servers' 5 s
 * keep-alive timeout, so the client closes first and never writes into a socket the server
 * is closing (which would fail the request with ECONNRESET).
 */
const IDLE_SOCKET_MS = 4_000;

interface Target {
  protocol: string;
  hostname: string;
  port: string;
  path: string;
}

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers))
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
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
 * node:http(s) with a keep-alive agent per upstream. The limiter bounds concurrency; the
 * agent's cap of the same size only matters in the instant between a slot's release and its
 * socket's return to the pool (the agent frees it a tick later): without it, each such
 * request would open a new connection and an extra idle one would be closed, churning
 * sockets at full speed. LIFO reuse lets surplus sockets go idle and close after a burst.
 */
export class HttpUpstream implements UpstreamTransport {
  // Private: its sockets hold the last request's headers, Authorization included.
  readonly #agent: HttpAgent;
  private readonly request: typeof httpRequest;
  private readonly targets = new Map<string, Target>();

  constructor(private readonly upstream: Upstream) {
    const https = upstream.baseUrl.protocol === 'https:';
    const options = {
      keepAlive: true,
      maxSockets: upstream.limits.maxConcurrency,
      maxFreeSockets: upstream.limits.maxConcurrency,
      timeout: IDLE_SOCKET_MS,
      scheduling: 'lifo' as const,
    };
    this.#agent = https ? new HttpsAgent(options) : new HttpAgent(options);
    this.request = https ? httpsRequest : httpRequest;
  }

  send({ endpoint, body, requestId, signal }: AttemptRequest): Promise<AttemptResponse> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    const target = this.target(endpoint);
    const name = this.upstream.name;
    const timeoutMs = this.upstream.timeoutMs;

    return new Promise((resolve, reject) => {
      let settled = false;
      // Why we destroyed the request ourselves, when we did.
      let cause: 'timeout' | 'too-large' | null = null;
      const settle = (outcome: AttemptResponse | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const noAnswer = (code: NoAnswerCode, message: string): void =>
        settle({ kind: 'no-answer', code, message: this.upstream.redact(message) });
      const onError = (error: NodeJS.ErrnoException): void => {
        if (signal.aborted) settle(abortError(signal));
        else if (cause === 'timeout')
          noAnswer('upstream_timeout', `upstream ${name} did not answer within ${timeoutMs} ms`);
        else if (cause === 'too-large')
          noAnswer(
            'upstream_response_too_large',
            `upstream ${name} answered with more than ${MAX_RESPONSE_BYTES} bytes`,
          );
        else noAnswer('upstream_connection_error', `connection to upstream ${name} failed: ${error.message}`);
      };

      const req = this.request(
        {
          ...target,
          method: 'POST',
          agent: this.#agent,
          signal,
          headers: {
            ...this.upstream.headers,
            'content-type': 'application/json',
            accept: 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-barge-request-id': requestId,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_RESPONSE_BYTES) {
              chunks.push(chunk);
            } else if (cause === null) {
              cause = 'too-large';
              req.destroy();
            }
          });
          res.on('end', () =>
            settle({
              kind: 'response',
              status: res.statusCode ?? 0,
              headers: flatHeaders(res.headers),
              body: parseBody(this.upstream.redact(Buffer.concat(chunks, size).toString('utf8'))),
            }),
          );
          res.on('error', onError);
          res.on('close', () => {
            if (!res.complete) onError(new Error('connection closed before the response was complete'));
          });
        },
      );
      req.on('error', onError);
      const timer = setTimeout(() => {
        cause = 'timeout';
        req.destroy();
        // destroy() without an error emits none before the response started; settle here.
        onError(new Error('timeout'));
      }, timeoutMs);
      // A string (not a Buffer) lets Node send headers and body in a single write.
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  private target(endpoint: string): Target {
    let target = this.targets.get(endpoint);
    if (!target) {
      const url = this.upstream.url(endpoint);
      target = {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port,
        path: url.pathname + url.search,
      };
      this.targets.set(endpoint, target);
    }
    return target;
  }
}
