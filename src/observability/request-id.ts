import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Request ids. Every answer of the API carries `x-request-id` (the OpenAI SDKs expose it as
 * `_request_id`, and as `requestID` on every APIError), and every log line about the request
 * carries it as `request_id`. A client's own `X-Client-Request-Id` is echoed back, and logged
 * as `client_request_id`, when it is safe to: bounded, and of characters no log or header
 * parser can trip on.
 */

export const REQUEST_ID_HEADER = 'x-request-id';
export const CLIENT_REQUEST_ID_HEADER = 'x-client-request-id';

/** OpenAI's limit for X-Client-Request-Id is 512 ASCII characters; these are the safe ones. */
const SAFE_CLIENT_ID = /^[A-Za-z0-9._:/=+-]{1,512}$/;

/** A fresh id in OpenAI's shape: `req_` and 32 hex digits. */
export function newRequestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

/** The client's id if it is safe to echo and log, else null (ignored, never an error). */
export function safeClientRequestId(value: string | string[] | undefined): string | null {
  return typeof value === 'string' && SAFE_CLIENT_ID.test(value) ? value : null;
}

const clientIds = new WeakMap<object, string>();

/** The client's request id, when it gave a safe one. */
export function clientRequestIdOf(req: object): string | null {
  return clientIds.get(req) ?? null;
}

/**
 * The first middleware of the API: gives the request its id and puts the headers on the
 * answer before anything can fail (body parsing included), so error answers carry them too.
 */
export function assignRequestIds(
  req: IncomingMessage & { id?: unknown },
  res: ServerResponse,
  next: () => void,
): void {
  const id = newRequestId();
  req.id = id;
  res.setHeader(REQUEST_ID_HEADER, id);
  const client = safeClientRequestId(req.headers[CLIENT_REQUEST_ID_HEADER]);
  if (client) {
    clientIds.set(req, client);
    res.setHeader(CLIENT_REQUEST_ID_HEADER, client);
  }
  next();
}
