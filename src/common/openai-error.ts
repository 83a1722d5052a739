import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  Optional,
  PayloadTooLargeException,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { discoverRoutes, RouteTable } from './route-table';
import { newRequestId } from '../observability/request-id';
import { echo } from './text';

/**
 * The one place that builds OpenAI's error envelope. Every non-2xx answer of the API goes
 * through OpenAIErrorFilter, so controllers and services only throw.
 */

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType; param: string | null; code: string | null };
}

export class OpenAIError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAIErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new OpenAIError(400, message, 'invalid_request_error', param, code);

export const notFound = (message: string, param: string | null = null) =>
  new OpenAIError(404, message, 'invalid_request_error', param, null);

export const unauthorized = (message: string) =>
  new OpenAIError(401, message, 'authentication_error', null, 'invalid_api_key');

export const forbidden = (message: string, code: string | null = null) =>
  new OpenAIError(403, message, 'permission_error', null, code);

/** A state conflict that retrying cannot fix: tell the SDKs not to retry it. */
export const conflict = (message: string, code: string | null = null, param: string | null = null) =>
  new OpenAIError(409, message, 'invalid_request_error', param, code, { 'x-should-retry': 'false' });

/** Over a rate or concurrency limit; the SDKs retry after `retryAfterSeconds`. */
export const tooManyRequests = (message: string, code: string, retryAfterSeconds = 1) =>
  new OpenAIError(429, message, 'rate_limit_error', null, code, { 'retry-after': String(retryAfterSeconds) });

/**
 * Over a tenant quota (active batches, stored bytes): 429 like a rate limit, but one that an
 * immediate retry does not lift, so the SDKs are told not to retry.
 */
export const quotaExceeded = (message: string, code: string) =>
  new OpenAIError(429, message, 'rate_limit_error', null, code, { 'x-should-retry': 'false' });

/** The client did not send its request (headers or body) in time. */
export const requestTimeout = (message = 'The request was not received in time.') =>
  new OpenAIError(408, message, 'invalid_request_error', null, 'request_timeout');

/** A known path asked with a method it does not serve. */
export const methodNotAllowed = (method: string, path: string, allowed: string[]) =>
  new OpenAIError(
    405,
    `Method ${echo(method)} is not allowed on ${echo(path)}. Allowed: ${allowed.join(', ')}.`,
    'invalid_request_error',
    null,
    'method_not_allowed',
    { Allow: allowed.join(', ') },
  );

/** A path nothing serves. */
export const unknownRoute = (method: string, path: string) =>
  new OpenAIError(
    404,
    `Unknown route: ${echo(method)} ${echo(path)}`,
    'invalid_request_error',
    null,
    'unknown_url',
  );

export const tooLarge = (message: string, param: string | null = null, code = 'file_too_large') =>
  new OpenAIError(413, message, 'invalid_request_error', param, code);

const bodyTooLarge = () => tooLarge('Request body is too large.', null, 'request_too_large');

export const serviceUnavailable = (message: string) =>
  new OpenAIError(503, message, 'server_error', null, 'service_unavailable');

/** A path parameter that is not percent-encoded UTF-8 cannot be any object's id: 404, like an unknown one. */
const undecodableId = () =>
  notFound('No such object: the id in the URL is not valid percent-encoded UTF-8.', 'id');

function fromHttpException(err: HttpException): OpenAIError {
  const status = err.getStatus();
  const response = err.getResponse();
  let message = err.message;
  if (typeof response === 'object' && response !== null && 'message' in response) {
    const m = (response as { message: unknown }).message;
    message = Array.isArray(m) ? m.join('; ') : String(m);
  }
  if (status === HttpStatus.NOT_FOUND) {
    const route = /^Cannot (\S+) (.*)$/s.exec(message);
    return route
      ? unknownRoute(route[1], route[2])
      : new OpenAIError(404, echo(message), 'invalid_request_error', null, 'unknown_url');
  }
  if (err instanceof PayloadTooLargeException) return bodyTooLarge();
  // Nest re-throws the router's URIError (a path parameter it cannot percent-decode) this way.
  if (status === HttpStatus.BAD_REQUEST && message.startsWith('Failed to decode param'))
    return undecodableId();
  const type: OpenAIErrorType =
    status === 401
      ? 'authentication_error'
      : status === 403
        ? 'permission_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  return new OpenAIError(status, echo(message), type);
}

/** Errors thrown by Express middleware (body-parser, the router) carry a status and a type. */
function fromMiddlewareError(err: unknown): OpenAIError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, type } = err as { status?: number; type?: string };
  if (type === 'entity.parse.failed') {
    return invalidRequest('We could not parse the JSON body of your request.', null, 'invalid_json');
  }
  if (type === 'entity.too.large') return bodyTooLarge();
  if (err instanceof URIError) return undecodableId();
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new OpenAIError(status, echo((err as Error).message), 'invalid_request_error');
  }
  return undefined;
}

/** Network-level error codes: the dependency could not be reached or dropped the connection. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/**
 * Whether `err` says a dependency (Postgres, Temporal) is down rather than that Barge is
 * wrong: a connection refused or dropped, Postgres shutting down or refusing connections
 * (SQLSTATE classes 08 and 57P, 53300), a pool that could not connect in time, Temporal
 * answering UNAVAILABLE or DEADLINE_EXCEEDED. Those answer 503 with Retry-After, which the
 * SDKs retry, instead of a 500.
 */
export function isDependencyDown(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (UNREACHABLE.has(code) || /^(08|57P0)/.test(code) || code === '53300'))
      return true;
    // gRPC status codes (Temporal): 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED.
    if (typeof code === 'number' && (code === 14 || code === 4) && e instanceof Error) return true;
    if (
      typeof message === 'string' &&
      /Connection terminated|timeout exceeded when trying to connect|Connection refused/i.test(message)
    )
      return true;
    e = (e as { driverError?: unknown; cause?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

export function toOpenAIError(err: unknown): OpenAIError {
  if (err instanceof OpenAIError) return err;
  // Nest wraps body-parser failures in a BadRequestException; the original says what it was.
  if (err instanceof HttpException) return fromMiddlewareError(err.cause) ?? fromHttpException(err);
  const middleware = fromMiddlewareError(err);
  if (middleware) return middleware;
  if (isDependencyDown(err)) {
    const down = serviceUnavailable('A service Barge depends on is unavailable right now; please retry.');
    return new OpenAIError(down.status, down.message, down.type, null, down.code, { 'retry-after': '2' });
  }
  return new OpenAIError(500, 'The server had an error while processing your request.', 'server_error');
}

/** Longest message an answer carries: a backstop, every echo of input is bounded already. */
const MAX_MESSAGE_CHARS = 2_048;

/** Writes `error` as the answer to `res`, or cuts the connection if an answer has begun. */
export function sendError(res: Response, error: OpenAIError): void {
  if (res.headersSent) {
    // A streamed download failed midway: the status is gone, only cutting the stream tells the client.
    res.destroy();
    return;
  }
  const body = error.toBody();
  if (body.error.message.length > MAX_MESSAGE_CHARS)
    body.error.message = echo(body.error.message, MAX_MESSAGE_CHARS);
  res.status(error.status).set(error.headers).json(body);
}

/**
 * The whole answer for a request Node's HTTP parser refused (it never reached Express), as
 * raw bytes for the socket: the envelope, and Connection: close, since the parser cannot go on.
 */
export function rawErrorResponse(error: OpenAIError): string {
  const body = JSON.stringify(error.toBody());
  const headers = Object.entries(error.headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    // No request was parsed, so none has an id yet: this answer gets one of its own.
    `x-request-id: ${newRequestId()}\r\n` +
    headers.join('') +
    'Connection: close\r\n\r\n' +
    body
  );
}

@Catch()
export class OpenAIErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('errors');
  private routes?: RouteTable;

  constructor(
    @Optional() private readonly discovery?: DiscoveryService,
    @Optional() private readonly scanner?: MetadataScanner,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    let error = toOpenAIError(exception);
    if (error.code === 'unknown_url' && exception instanceof HttpException) {
      error = this.wrongMethod(host.switchToHttp().getRequest<Request>()) ?? error;
    }
    if (error.status >= 500)
      this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    sendError(res, error);
  }

  /** 405 when the router found no route but the path is served with other methods. */
  private wrongMethod(req: Request): OpenAIError | undefined {
    if (!this.discovery || !this.scanner) return undefined;
    this.routes ??= new RouteTable(discoverRoutes(this.discovery, this.scanner));
    const allowed = this.routes.allowedMethods(req.path);
    return allowed.length > 0 ? methodNotAllowed(req.method, req.path, allowed) : undefined;
  }
}
