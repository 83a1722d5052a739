import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  PayloadTooLargeException,
} from '@nestjs/common';
import type { Response } from 'express';

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

/** A state conflict that retrying cannot fix: tell the SDKs not to retry it. */
export const conflict = (message: string, code: string | null = null) =>
  new OpenAIError(409, message, 'invalid_request_error', null, code, { 'x-should-retry': 'false' });

export const tooLarge = (message: string, param: string | null = null, code = 'file_too_large') =>
  new OpenAIError(413, message, 'invalid_request_error', param, code);

const bodyTooLarge = () => tooLarge('Request body is too large.', null, 'request_too_large');

export const serviceUnavailable = (message: string) =>
  new OpenAIError(503, message, 'server_error', null, 'service_unavailable');

function fromHttpException(err: HttpException): OpenAIError {
  const status = err.getStatus();
  const response = err.getResponse();
  let message = err.message;
  if (typeof response === 'object' && response !== null && 'message' in response) {
    const m = (response as { message: unknown }).message;
    message = Array.isArray(m) ? m.join('; ') : String(m);
  }
  if (status === HttpStatus.NOT_FOUND) {
    return new OpenAIError(
      404,
      message.replace(/^Cannot (\w+) /, 'Unknown route: $1 '),
      'invalid_request_error',
      null,
      'unknown_url',
    );
  }
  if (err instanceof PayloadTooLargeException) return bodyTooLarge();
  const type: OpenAIErrorType =
    status === 401
      ? 'authentication_error'
      : status === 403
        ? 'permission_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  return new OpenAIError(status, message, type);
}

/** Errors thrown by Express middleware (body-parser) carry a status and a type. */
function fromMiddlewareError(err: unknown): OpenAIError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, type } = err as { status?: number; type?: string };
  if (type === 'entity.parse.failed') {
    return invalidRequest('We could not parse the JSON body of your request.', null, 'invalid_json');
  }
  if (type === 'entity.too.large') return bodyTooLarge();
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new OpenAIError(status, (err as Error).message, 'invalid_request_error');
  }
  return undefined;
}

export function toOpenAIError(err: unknown): OpenAIError {
  if (err instanceof OpenAIError) return err;
  // Nest wraps body-parser failures in a BadRequestException; the original says what it was.
  if (err instanceof HttpException) return fromMiddlewareError(err.cause) ?? fromHttpException(err);
  return (
    fromMiddlewareError(err) ??
    new OpenAIError(500, 'The server had an error while processing your request.', 'server_error')
  );
}

@Catch()
export class OpenAIErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const error = toOpenAIError(exception);
    if (error.status >= 500)
      this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    if (res.headersSent) {
      // A streamed download failed midway: the status is gone, only cutting the stream tells the client.
      res.destroy();
      return;
    }
    res.status(error.status).set(error.headers).json(error.toBody());
  }
}
