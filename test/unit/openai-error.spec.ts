import { BadRequestException, NotFoundException } from '@nestjs/common';
import { conflict, OpenAIError, toOpenAIError } from '../../src/common/openai-error';

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
