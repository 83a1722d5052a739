/**
 * Barge's upstream model simulator: an OpenAI-compatible HTTP server on bare node:http.
 * A framework would cost more per request than everything below; the simulator must stay
 * far faster than the system under test so it never shapes a benchmark's results.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CapacityModel } from './capacity';
import { ANSWER, directedFault, globalFault, parseDirective, type Outcome } from './faults';
import { latencySampler, mulberry32, type Random } from './latency';
import { resolveOptions, type SimulatorInput, type SimulatorOptions } from './options';
import {
  ApiError,
  ENDPOINTS,
  errorEnvelope,
  estimateTokens,
  LISTED_MODELS,
  modelObject,
  newId,
  requestModel,
  type Endpoint,
  type JsonObject,
} from './responses';
import { AttemptTracker, StatsRegistry, type Counters, type SimulatorStats } from './stats';

export type { RateLimitCause, SecondStats, SimulatorStats } from './stats';

export interface SimulatorHandle {
  /** Origin, e.g. http://127.0.0.1:8100 */
  url: string;
  /** The OpenAI base URL, i.e. `${url}/v1`. */
  baseUrl: string;
  port: number;
  options: Readonly<SimulatorOptions>;
  /** Stops listening and drops every connection, hung ones included; pending answers are abandoned. */
  close(): Promise<void>;
  /** The same numbers as GET /_sim/stats, optionally restricted to one model. */
  stats(model?: string): SimulatorStats;
  /** Zeroes the counters, forgets attempt counts and reseeds the PRNG, like POST /_sim/reset. */
  reset(): void;
}

/** Header that identifies retries of one request for `simulate.fail_times`. */
const REQUEST_ID_HEADER = 'x-barge-request-id';

// Longer than any client's idle timeout, so the client always closes an idle keep-alive
// socket first; otherwise a request can race the server's close and fail with ECONNRESET.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const ENDPOINT_MAP = new Map<string, Endpoint>(Object.entries(ENDPOINTS));

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function send(res: ServerResponse, status: number, body: object, headers?: OutgoingHttpHeaders): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'x-request-id': newId('req_'),
    ...headers,
  });
  res.end(json);
}

function sendError(res: ServerResponse, error: ApiError): void {
  send(res, error.status, error.toBody());
}

/** One inference request's bookkeeping, settled once when its connection's answer ends. */
interface InFlight {
  counters: Counters[];
  /** Holds a slot of the congestion model. */
  admitted: boolean;
  /** The connection's answer has ended (or the client left): nothing may be taken any more. */
  closed: boolean;
}

/** What the congestion model charges a request: the answer's total tokens, else ~4 bytes a token. */
function tokenCost(answer: object, bodyBytes: number): number {
  const usage = (answer as { usage?: { total_tokens?: unknown } }).usage;
  return typeof usage?.total_tokens === 'number' ? usage.total_tokens : estimateTokens(bodyBytes);
}

export async function startSimulator(input: SimulatorInput = {}): Promise<SimulatorHandle> {
  const options = resolveOptions(input);
  const now = (): number => performance.timeOrigin + performance.now();
  let random: Random = mulberry32(options.seed);
  // Indirect, so that reset() can swap the PRNG under the sampler.
  const sampleLatency = latencySampler(options.latency, () => random());
  const stats = new StatsRegistry(options, now);
  const attempts = new AttemptTracker(options.maxTrackedRequests);
  const capacity =
    options.capacity > 0 || options.capacityTpm > 0 ? new CapacityModel(options, now) : undefined;
  const timers = new Set<NodeJS.Timeout>();
  const apiKeys = new Set(options.apiKeys.map((key) => `Bearer ${key}`));
  const authorized = (header: string | undefined): boolean =>
    apiKeys.size === 0 || (header !== undefined && apiKeys.has(header));
  const hung = new Set<ServerResponse>();

  /** Counts the outcome of one request against every counter set it belongs to. */
  const record = (counters: Counters[], outcome: string): void => {
    for (const c of counters) c.outcome(outcome);
  };

  const perform = (res: ServerResponse, counters: Counters[], outcome: Outcome, answer: object): void => {
    // The client may have given up while we were "thinking".
    if (res.destroyed) {
      record(counters, 'aborted');
      return;
    }
    switch (outcome.kind) {
      case 'answer':
        record(counters, '200');
        send(res, 200, answer);
        return;
      case 'status': {
        record(counters, String(outcome.status));
        if (outcome.cause !== undefined) for (const c of counters) c.limited(outcome.cause);
        const ms = outcome.retryAfterMs;
        const headers =
          ms === undefined
            ? undefined
            : { 'retry-after': String(Math.ceil(ms / 1000)), 'retry-after-ms': String(ms) };
        const body = errorEnvelope(outcome.status, outcome.message, null, null, outcome.errorType);
        send(res, outcome.status, body, headers);
        return;
      }
      case 'reset':
        record(counters, 'reset');
        // An RST rather than a FIN: the client sees ECONNRESET, as with a crashed upstream.
        res.socket?.resetAndDestroy();
        return;
      case 'hang':
        record(counters, 'hang');
        hung.add(res);
        res.once('close', () => hung.delete(res));
        return;
    }
  };

  const inference = (
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    raw: Buffer,
    request: InFlight,
  ): void => {
    const { counters } = request;
    // A client that left while its body was read would otherwise leave a slot taken forever.
    if (request.closed) {
      record(counters, 'aborted');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      record(counters, '400');
      sendError(
        res,
        new ApiError(
          400,
          'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
          null,
          'invalid_json',
        ),
      );
      return;
    }
    if (!isObject(body)) {
      record(counters, '400');
      sendError(res, new ApiError(400, 'The request body must be a JSON object.', null, 'invalid_type'));
      return;
    }

    let answer: object;
    let directive: ReturnType<typeof parseDirective>;
    try {
      const model = requestModel(body, endpoint);
      const modelCounters = stats.forModel(model);
      if (modelCounters !== undefined) {
        modelCounters.arrive();
        counters.push(modelCounters);
      }
      directive = parseDirective(body.simulate);
      answer = endpoint.build(body, model);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      record(counters, String(error.status));
      sendError(res, error);
      return;
    }

    // The congestion model comes first: a request it refuses never reached the "model", so it
    // takes no `fail_times` attempt and no PRNG draw, and is answered at once.
    let slowdown = 1;
    if (capacity !== undefined) {
      const admission = capacity.admit(tokenCost(answer, raw.length));
      if (!admission.admitted) {
        const { cause, retryAfterMs, message } = admission;
        const errorType = cause === 'tpm' ? 'tokens' : undefined;
        perform(
          res,
          counters,
          { kind: 'status', status: 429, retryAfterMs, message, errorType, cause },
          answer,
        );
        return;
      }
      request.admitted = true;
      for (const c of counters) c.admit();
      slowdown = admission.slowdown;
    }

    let outcome: Outcome;
    if (directive?.failTimes !== undefined) {
      // A scripted request ignores the global fault rates: its fate is exactly what it asked for.
      const key = requestKey(req, raw);
      outcome =
        attempts.next(key) <= directive.failTimes ? directedFault(directive, options.retryAfterMs) : ANSWER;
    } else {
      outcome = globalFault(options, random);
    }
    const delay = Math.round((directive?.latencyMs ?? sampleLatency()) * slowdown);

    if (delay <= 0 || outcome.kind === 'hang') {
      perform(res, counters, outcome, answer);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      perform(res, counters, outcome, answer);
    }, delay);
    timers.add(timer);
  };

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';

    if (path.startsWith('/v1/')) {
      // Captured now: a reset while this request is in flight must not touch the new counters.
      const global = stats.global;
      global.arrive();
      const request: InFlight = { counters: [global], admitted: false, closed: false };
      const counters = request.counters;
      // 'close' comes once, after the answer is written or the connection is gone (reset, hang).
      res.once('close', () => {
        request.closed = true;
        for (const c of request.counters) {
          if (request.admitted) c.release();
          c.depart();
        }
        if (request.admitted) capacity?.release();
      });

      const endpoint = method === 'POST' ? ENDPOINT_MAP.get(path) : undefined;
      if (endpoint !== undefined) {
        stats.credential(req.headers.authorization);
        readBody(req, options.maxBodyBytes, (raw) => {
          if (raw === undefined) {
            record(counters, '413');
            sendError(
              res,
              new ApiError(
                413,
                `Request body larger than ${options.maxBodyBytes} bytes.`,
                null,
                'request_too_large',
              ),
            );
          } else if (!authorized(req.headers.authorization)) {
            record(counters, '401');
            // OpenAI's answer to a wrong key (the body read first, so the connection stays usable).
            sendError(
              res,
              new ApiError(
                401,
                'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
                null,
                'invalid_api_key',
              ),
            );
          } else {
            // Runs in a stream callback, outside the request handler's try/catch.
            try {
              inference(req, res, endpoint, raw, request);
            } catch (error) {
              internalError(res, error);
            }
          }
        });
        return;
      }
      if (method === 'GET' && path === '/v1/models') {
        record(counters, '200');
        const ids = new Set([...LISTED_MODELS, ...stats.modelNames()]);
        send(res, 200, { object: 'list', data: [...ids].map(modelObject) });
        return;
      }
      if (method === 'GET' && path.startsWith('/v1/models/')) {
        const id = decodePathSegment(path.slice('/v1/models/'.length));
        if (id !== undefined) {
          record(counters, '200');
          send(res, 200, modelObject(id));
          return;
        }
      }
      record(counters, '404');
      sendError(res, new ApiError(404, `Invalid URL (${method} ${path})`));
      return;
    }

    if (method === 'GET' && path === '/healthz') {
      send(res, 200, { status: 'ok' });
    } else if (method === 'GET' && path === '/_sim/stats') {
      const model = q === -1 ? null : new URLSearchParams(url.slice(q + 1)).get('model');
      send(res, 200, stats.snapshot(model ?? undefined));
    } else if (method === 'POST' && path === '/_sim/reset') {
      reset();
      send(res, 200, { reset: true });
    } else {
      sendError(res, new ApiError(404, `Invalid URL (${method} ${path})`));
    }
  };

  const reset = (): void => {
    stats.reset();
    capacity?.resetTokens();
    attempts.clear();
    random = mulberry32(options.seed);
  };

  const server = createServer({ noDelay: true, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, (req, res) => {
    try {
      route(req, res);
    } catch (error) {
      internalError(res, error);
    }
  });
  // Node requires the headers timeout to exceed the keep-alive timeout.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    baseUrl: `${url}/v1`,
    port,
    options,
    stats: (model?: string) => stats.snapshot(model),
    reset,
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        // Hung requests hold their sockets open by design; nothing else would end them.
        for (const res of hung) res.socket?.destroy();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Identity of "the same request" across retries: the caller's id if given, else the exact bytes. */
function requestKey(req: IncomingMessage, raw: Buffer): string {
  const header = req.headers[REQUEST_ID_HEADER];
  if (typeof header === 'string' && header !== '') return `h:${header}`;
  return `b:${createHash('sha256').update(raw).digest('base64')}`;
}

/** Collects the body; passes undefined (after draining) when it exceeds `maxBytes`. */
function readBody(req: IncomingMessage, maxBytes: number, done: (raw: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > maxBytes) done(undefined);
    else done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  });
}

function decodePathSegment(segment: string): string | undefined {
  if (segment === '' || segment.includes('/')) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function internalError(res: ServerResponse, error: unknown): void {
  console.error('simulator: internal error', error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(
    res,
    500,
    errorEnvelope(500, `Internal simulator error: ${error instanceof Error ? error.message : String(error)}`),
  );
}
