import { errorLine, outcomeLine, usageOf } from '../../src/batches/finalize/output-lines';

describe('output lines', () => {
  it('writes a 2xx answer as an output line with usage', () => {
    const body = {
      id: 'chatcmpl-1',
      usage: { prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 2 } },
    };
    const { ok, output, usage } = outcomeLine('r1', {
      kind: 'http',
      status: 200,
      body,
      text: JSON.stringify(body),
      upstreamRequestId: 'req_abc',
      upstream: 'sim',
      attempts: 1,
    });
    expect(ok).toBe(true);
    expect(usage).toEqual({ inputTokens: 10, cachedTokens: 2, outputTokens: 5, reasoningTokens: 0 });
    const parsed = JSON.parse(output);
    expect(parsed).toEqual({
      id: expect.stringMatching(/^batch_req_[A-Za-z0-9]{24}$/),
      custom_id: 'r1',
      response: { status_code: 200, request_id: 'req_abc', body },
      error: null,
    });
  });

  it('writes an HTTP error as an error line with the upstream status and body, and no usage', () => {
    const body = { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } };
    const { ok, output, usage } = outcomeLine('r2', {
      kind: 'http',
      status: 400,
      body,
      text: JSON.stringify(body),
      upstreamRequestId: null,
      upstream: 'sim',
      attempts: 1,
    });
    expect(ok).toBe(false);
    expect(usage.inputTokens).toBe(0);
    expect(JSON.parse(output)).toMatchObject({
      custom_id: 'r2',
      response: { status_code: 400, body },
      error: null,
    });
  });

  it('writes a request without any HTTP answer with response null', () => {
    const { ok, output } = outcomeLine('r3', {
      kind: 'error',
      code: 'upstream_timeout',
      message: 'timed out',
      upstream: 'sim',
      attempts: 8,
    });
    expect(ok).toBe(false);
    expect(JSON.parse(output)).toMatchObject({
      custom_id: 'r3',
      response: null,
      error: { code: 'upstream_timeout' },
    });
    expect(JSON.parse(errorLine('r4', 'batch_expired', 'late'))).toMatchObject({
      response: null,
      error: { code: 'batch_expired', message: 'late' },
    });
  });

  it('reads Responses API usage', () => {
    expect(
      usageOf({
        usage: {
          input_tokens: 7,
          output_tokens: 3,
          output_tokens_details: { reasoning_tokens: 1 },
          total_tokens: 10,
        },
      }),
    ).toEqual({ inputTokens: 7, cachedTokens: 0, outputTokens: 3, reasoningTokens: 1 });
  });

  it('counts no usage an upstream cannot have had: fractions, negatives, huge numbers, strings', () => {
    for (const bad of [1.5, -3, 1e300, Infinity, 2 ** 60, '12']) {
      expect(
        usageOf({
          usage: {
            prompt_tokens: bad,
            completion_tokens: bad,
            prompt_tokens_details: { cached_tokens: bad },
            completion_tokens_details: { reasoning_tokens: bad },
          },
        }),
      ).toEqual({ inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 });
    }
    expect(usageOf({ usage: { prompt_tokens: 3, completion_tokens: 1.5 } })).toEqual({
      inputTokens: 3,
      cachedTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
    });
  });
});
