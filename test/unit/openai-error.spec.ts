import { BadRequestException, NotFoundException } from '@nestjs/common';
import { clientErrorAnswer } from '../../src/common/http-server';
import {
  conflict,
  methodNotAllowed,
  OpenAIError,
  rawErrorResponse,
  tooManyRequests,
  toOpenAIError,
} from '../../src/common/openai-error';

describe('toOpenAIError', () => {
  it('keeps OpenAI errors, with their headers', () => {
    const err = conflict('Cannot cancel a batch with status completed.', 'batch_not_cancellable');
    expect(toOpenAIError(err)).toBe(err);
    expect(err.headers).toEqual({ 'x-should-retry': 'false' });
    expect(err.toBody()).toEqual({
      error: {
        message: 'Cannot cancel a batch with status completed.',
        type: 'invalid_request_error',
        param: null,
        code: 'batch_not_cancellable',
      },
    });
  });

  it('names a body that is not JSON, also when Nest has wrapped the parser error', () => {
    const parserError = Object.assign(new SyntaxError('Unexpected token'), {
      status: 400,
      type: 'entity.parse.failed',
    });
    for (const err of [parserError, new BadRequestException('Unexpected token', { cause: parserError })]) {
      expect(toOpenAIError(err)).toMatchObject({
        status: 400,
        code: 'invalid_json',
        type: 'invalid_request_error',
      });
    }
  });

  it('tells an oversized request body from an oversized file', () => {
    const parserError = Object.assign(new Error('request entity too large'), {
      status: 413,
      type: 'entity.too.large',
    });
    expect(toOpenAIError(parserError)).toMatchObject({ status: 413, code: 'request_too_large' });
  });

  it('turns unknown routes into 404 envelopes and anything else into a 500 without details', () => {
    expect(toOpenAIError(new NotFoundException('Cannot GET /v2/x'))).toMatchObject({
      status: 404,
      message: 'Unknown route: GET /v2/x',
      code: 'unknown_url',
    });
    const internal = toOpenAIError(new Error('password=hunter2 leaked in a driver message'));
    expect(internal).toBeInstanceOf(OpenAIError);
    expect(internal.status).toBe(500);
    expect(internal.message).not.toContain('hunter2');
  });
});

describe('answers of the HTTP layer', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'request_header_fields_too_large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'request_timeout'],
    ['HPE_INVALID_HEADER_TOKEN', 400, 'invalid_http_request'],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400, 'invalid_http_request'],
    [undefined, 400, 'invalid_http_request'],
  ])('a parser error %s is a %d %s', (code, status, errorCode) => {
    const err = Object.assign(new Error('parse error'), { code, reason: 'Invalid header value char' });
    expect(clientErrorAnswer(err)).toMatchObject({ status, code: errorCode });
  });

  it('names only the parser’s own short reasons', () => {
    const odd = Object.assign(new Error('x'), { code: 'HPE_X', reason: 'a\nb'.repeat(100) });
    expect(clientErrorAnswer(odd).message).toBe('The request is not valid HTTP.');
  });

  it('writes a complete raw response with the envelope and a request id of its own, and closes', () => {
    const raw = rawErrorResponse(
      clientErrorAnswer(Object.assign(new Error(), { code: 'HPE_HEADER_OVERFLOW' })),
    );
    const [head, body] = raw.split('\r\n\r\n');
    expect(head.split('\r\n')).toEqual([
      'HTTP/1.1 431 Request Header Fields Too Large',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      expect.stringMatching(/^x-request-id: req_[0-9a-f]{32}$/),
      'Connection: close',
    ]);
    expect(Object.keys(JSON.parse(body).error).sort()).toEqual(['code', 'message', 'param', 'type']);
  });

  it('answers a path parameter the router cannot decode like an unknown id', () => {
    const routerError = new BadRequestException("Failed to decode param '%ED%A0%80'");
    expect(toOpenAIError(routerError)).toMatchObject({ status: 404, param: 'id' });
    expect(toOpenAIError(Object.assign(new URIError('URI malformed'), { status: 400 }))).toMatchObject({
      status: 404,
    });
  });

  it('bounds what it echoes: unknown routes, wrong methods, middleware messages', () => {
    const path = `/v1/${'x'.repeat(10_000)}`;
    expect(toOpenAIError(new NotFoundException(`Cannot GET ${path}`)).message.length).toBeLessThan(300);
    const wrong = methodNotAllowed('PUT', path, ['GET', 'HEAD']);
    expect(wrong).toMatchObject({ status: 405, code: 'method_not_allowed', headers: { Allow: 'GET, HEAD' } });
    expect(wrong.message.length).toBeLessThan(400);
    const charset = Object.assign(new Error(`unsupported charset "${'X'.repeat(5000)}"`), { status: 415 });
    expect(toOpenAIError(charset)).toMatchObject({ status: 415 });
    expect(toOpenAIError(charset).message.length).toBeLessThan(300);
  });

  it('says 429 with Retry-After for rate limits', () => {
    expect(tooManyRequests('slow down', 'too_many_concurrent_uploads')).toMatchObject({
      status: 429,
      type: 'rate_limit_error',
      headers: { 'retry-after': '1' },
    });
  });
});

describe('a dependency that is down', () => {
  it.each([
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    [
      'Postgres shutting down',
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    ],
    ['a pool that cannot connect', new Error('timeout exceeded when trying to connect')],
    [
      'a dropped connection inside a query error',
      Object.assign(new Error('query failed'), {
        driverError: new Error('Connection terminated unexpectedly'),
      }),
    ],
    [
      'Temporal unavailable',
      Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 }),
    ],
  ])('answers 503 with Retry-After for %s', (_name, err) => {
    const answer = toOpenAIError(err);
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('2');
    expect(answer.toBody().error).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
  });

  it('keeps a plain bug a 500', () => {
    expect(toOpenAIError(new TypeError('x is undefined')).status).toBe(500);
    expect(toOpenAIError(Object.assign(new Error('duplicate key'), { code: '23505' })).status).toBe(500);
  });
});
