import { ExpressAdapter } from '@nestjs/platform-express';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BargeConfig } from '../config/config';
import {
  invalidRequest,
  OpenAIError,
  rawErrorResponse,
  requestTimeout,
  sendError,
  toOpenAIError,
} from './openai-error';

/**
 * The API's HTTP server and the rules that hold before any controller runs: how long a client
 * may take to send a request, and how requests Node's parser refuses are answered.
 */

type ApiConfig = BargeConfig['api'];

/** How often Node looks for connections past their header deadline. */
const MAX_CHECK_INTERVAL_MS = 1_000;

/**
 * Nest's Express adapter, with a server created with our timeouts: only the constructor can
 * set how often Node checks them (connectionsCheckingInterval).
 */
export class BargeHttpAdapter extends ExpressAdapter {
  constructor(private readonly api: ApiConfig) {
    super();
  }

  override initHttpServer(): void {
    const server = createServer(
      {
        headersTimeout: this.api.headersTimeoutMs,
        // Whole-request deadlines are per route (bodyDeadline), since streamed uploads may take
        // as long as they keep moving; Node's own would cut a 2 GiB upload after it.
        requestTimeout: 0,
        connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL_MS, this.api.headersTimeoutMs),
        // Node would answer a missing Host with an empty 400 of its own; nothing here needs Host.
        requireHostHeader: false,
      },
      this.getInstance(),
    );
    // Socket inactivity: a stalled upload or a download nobody reads is cut after this.
    server.timeout = this.api.streamIdleTimeoutMs;
    // Node's own answers for these have no body at all; ours carry the envelope.
    server.on('clientError', answerClientError);
    server.on('checkExpectation', answerExpectation);
    server.on('connect', answerConnect);
    this.setHttpServer(server);
  }
}

/** `Expect:` other than 100-continue (Node answers 100-continue itself). */
function answerExpectation(req: IncomingMessage, res: ServerResponse): void {
  const error = new OpenAIError(
    417,
    'Only the expectation 100-continue is supported.',
    'invalid_request_error',
    'expect',
    'expectation_failed',
  );
  const body = JSON.stringify(error.toBody());
  res.writeHead(417, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
  req.resume();
}

/** CONNECT is a proxy's method; this is not a proxy. */
function answerConnect(_req: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => undefined);
  socket.end(
    rawErrorResponse(
      new OpenAIError(
        405,
        'CONNECT is not supported: this is not a proxy.',
        'invalid_request_error',
        null,
        'method_not_allowed',
      ),
    ),
  );
}

/** What an error of Node's HTTP parser means for the client. */
export function clientErrorAnswer(err: NodeJS.ErrnoException): OpenAIError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new OpenAIError(
        431,
        'The request line and headers are too large.',
        'invalid_request_error',
        null,
        'request_header_fields_too_large',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return requestTimeout('The request headers were not received in time.');
    default:
      return invalidRequest(
        `The request is not valid HTTP${parserReason(err)}.`,
        null,
        'invalid_http_request',
      );
  }
}

/** llhttp says what it disliked in `reason` ("Invalid header value char"), a fixed text of its own. */
function parserReason(err: NodeJS.ErrnoException): string {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' && /^[\w .,'-]{1,80}$/.test(reason) ? `: ${reason}` : '';
}

/**
 * Node's 'clientError': the parser refused the bytes (or the headers came too slowly) before
 * any request object existed. Answer in the envelope when the connection can still carry an
 * answer, then close it: the parser cannot find the next request after an error.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.on('error', () => undefined);
  socket.end(rawErrorResponse(clientErrorAnswer(err)));
  // end() flushes first; a peer that never reads must not keep the socket forever.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** Requests whose body deadline has been lifted (streamed uploads, which have an idle timeout). */
const deadlines = new WeakMap<IncomingMessage, () => void>();

/**
 * Express middleware: a request whose body has not fully arrived within `timeoutMs` is
 * answered 408 and its connection closed. It runs first, so it also covers bodies nobody
 * reads (an unauthenticated request's, which Node drains after the 401).
 */
export function bodyDeadline(timeoutMs: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!req.complete) {
      const timer = setTimeout(() => {
        // The body arrived; a slow handler is not the client's fault.
        if (req.complete) return;
        if (!res.headersSent) {
          res.set('Connection', 'close');
          sendError(res, requestTimeout('The request body was not received in time.'));
          res.once('finish', () => req.socket.destroy());
        } else {
          req.socket.destroy();
        }
      }, timeoutMs);
      const lift = () => clearTimeout(timer);
      deadlines.set(req, lift);
      req.once('end', lift);
      req.once('close', lift);
    }
    next();
  };
}

/** Lifts the body deadline of `req`: its handler streams the body under an idle timeout instead. */
export function liftBodyDeadline(req: IncomingMessage): void {
  deadlines.get(req)?.();
}

/**
 * Express error middleware right after the body parser: its errors (bad JSON, too large, bad
 * charset, aborted) answer in the envelope from their own status and type.
 */
export const bodyParserErrors: ErrorRequestHandler = (err, _req, res, next) => {
  if (res.headersSent) return next(err);
  sendError(res, toOpenAIError(err));
};
