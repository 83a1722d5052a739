import { validateLine, MAX_MODEL_LENGTH } from '../../src/batches/validate/input-validation';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/batches/validate/json-depth';
import { MAX_LINE_BYTES } from '../../src/batches/validate/jsonl-lines';
import { unstorableText } from '../../src/common/text';

const line = (o: unknown) => JSON.stringify(o);
const good = {
  custom_id: 'r1',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
};
const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
/** The good line with `extra` in its body nested so that the whole line is `depth` levels deep. */
const ofDepth = (depth: number) =>
  line({ ...good, body: { ...good.body, extra: 'X' } }).replace('"X"', nested(depth - 2));

describe('validateLine', () => {
  it('accepts a well-formed request', () => {
    expect(validateLine(line(good), 1, '/v1/chat/completions')).toEqual({
      request: { customId: 'r1', model: 'gpt-4o-mini', body: good.body },
    });
  });

  it.each([
    ['not json', '{"custom_id":', 'invalid_json_line', null],
    ['not an object', '[1,2]', 'invalid_json_line', null],
    ['missing custom_id', line({ ...good, custom_id: undefined }), 'missing_required_parameter', 'custom_id'],
    ['missing body', line({ ...good, body: undefined }), 'missing_required_parameter', 'body'],
    ['GET', line({ ...good, method: 'GET' }), 'invalid_method', 'method'],
    ['other url', line({ ...good, url: '/v1/embeddings' }), 'invalid_url', 'url'],
    [
      'stream',
      line({ ...good, body: { ...good.body, stream: true } }),
      'streaming_unsupported',
      'body.stream',
    ],
    ['no model', line({ ...good, body: { messages: [] } }), 'missing_required_parameter', 'body.model'],
    ['no messages', line({ ...good, body: { model: 'm' } }), 'missing_required_parameter', 'body.messages'],
    ['numeric custom_id', line({ ...good, custom_id: 7 }), 'invalid_request', 'custom_id'],
    // Text Postgres cannot store, in the fields that are stored.
    ['a NUL in custom_id', line({ ...good, custom_id: 'a\u0000' }), 'invalid_text', 'custom_id'],
    ['a lone surrogate in custom_id', line({ ...good, custom_id: '\ud800' }), 'invalid_text', 'custom_id'],
    ['a NUL in method', line({ ...good, method: 'PO\u0000ST' }), 'invalid_text', 'method'],
    ['a lone surrogate in url', line({ ...good, url: '/v1/x\udfff' }), 'invalid_text', 'url'],
    [
      'a NUL in model',
      line({ ...good, body: { ...good.body, model: 'm\u0000' } }),
      'invalid_text',
      'body.model',
    ],
    [
      'a lone surrogate in model',
      line({ ...good, body: { ...good.body, model: '\ud800' } }),
      'invalid_text',
      'body.model',
    ],
    // The limits of one line.
    [
      `a model of ${MAX_MODEL_LENGTH + 1} characters`,
      line({ ...good, body: { ...good.body, model: 'm'.repeat(MAX_MODEL_LENGTH + 1) } }),
      'model_too_long',
      'body.model',
    ],
    [`a line ${MAX_JSON_DEPTH + 1} levels deep`, ofDepth(MAX_JSON_DEPTH + 1), 'too_deeply_nested', null],
    ['a line 10,000 levels deep', ofDepth(10_000), 'too_deeply_nested', null],
    ['deep nesting that is not even JSON', nested(100_000).slice(0, 150_000), 'too_deeply_nested', null],
  ])('rejects %s', (_name, text, code, param) => {
    expect(validateLine(text, 42, '/v1/chat/completions')).toEqual({
      error: { code, message: expect.any(String), param, line: 42 },
    });
  });

  it('accepts a line exactly at the depth limit, and a model exactly at the length limit', () => {
    expect(validateLine(ofDepth(MAX_JSON_DEPTH), 1, '/v1/chat/completions')).toHaveProperty('request');
    const model = 'm'.repeat(MAX_MODEL_LENGTH);
    expect(
      validateLine(line({ ...good, body: { ...good.body, model } }), 1, '/v1/chat/completions'),
    ).toMatchObject({
      request: { model },
    });
  });

  it('carries NULs and lone surrogates inside the body through: they are legitimate content', () => {
    const body = { ...good.body, messages: [{ role: 'user', content: 'a\u0000b\ud800c' }] };
    expect(validateLine(line({ ...good, body }), 1, '/v1/chat/completions')).toEqual({
      request: { customId: 'r1', model: 'gpt-4o-mini', body },
    });
  });

  it(`refuses a line over ${MAX_LINE_BYTES} bytes with line_too_large`, () => {
    const text = line({ ...good, body: { ...good.body, pad: 'x'.repeat(MAX_LINE_BYTES) } });
    expect(validateLine(text, 3, '/v1/chat/completions')).toMatchObject({
      error: { code: 'line_too_large', line: 3 },
    });
  });

  it('bounds every echo of the line in its messages, and keeps them storable', () => {
    for (const text of [
      line({ ...good, url: `/v1/${'u\n'.repeat(100_000)}` }),
      line({ ...good, method: 'x'.repeat(200_000) }),
      line({ ...good, method: { deep: JSON.parse(nested(40)) } }),
    ]) {
      const result = validateLine(text, 1, '/v1/chat/completions') as { error: { message: string } };
      expect(result.error.message.length).toBeLessThan(400);
      expect(unstorableText(result.error.message)).toBeNull();
    }
  });

  // The seed providers' format: only custom_id and body; method and url come from the batch.
  it('takes method and url from the batch when a line has neither', () => {
    const bare = { custom_id: 'request-1', body: good.body };
    expect(validateLine(line(bare), 1, '/v1/chat/completions')).toEqual({
      request: { customId: 'request-1', model: 'gpt-4o-mini', body: good.body },
    });
    expect(validateLine(line({ ...bare, method: 'POST' }), 1, '/v1/chat/completions')).toMatchObject({
      request: { customId: 'request-1' },
    });
    expect(
      validateLine(line({ ...bare, url: '/v1/chat/completions' }), 1, '/v1/chat/completions'),
    ).toMatchObject({ request: { customId: 'request-1' } });
  });

  it.each([
    ['only a url, of another endpoint', { url: '/v1/embeddings' }, 'invalid_url', 'url'],
    ['only a method, not POST', { method: 'GET' }, 'invalid_method', 'method'],
  ])('still checks a method or url that is present: %s', (_name, extra, code, param) => {
    const result = validateLine(
      line({ custom_id: 'r', body: good.body, ...extra }),
      3,
      '/v1/chat/completions',
    );
    expect(result).toEqual({ error: expect.objectContaining({ code, param, line: 3 }) });
  });

  it('lets moderations default their model', () => {
    const result = validateLine(
      line({ custom_id: 'm', method: 'POST', url: '/v1/moderations', body: { input: 'text' } }),
      1,
      '/v1/moderations',
    );
    expect(result).toMatchObject({ request: { model: 'omni-moderation-latest' } });
  });
});

describe('nestsDeeperThan', () => {
  it.each([
    ['{}', 1, false],
    ['{}', 0, true],
    ['{"a":[{"b":[]}]}', 4, false],
    ['{"a":[{"b":[]}]}', 3, true],
    ['{"a":"[[[[[[[[[["}', 1, false],
    ['{"a":"\\"[[[["}', 1, false],
    ['{"a":"\\\\"}', 1, false],
    ['[1,[2,[3]],[4]]', 3, false],
    ['[1,[2,[3]],[4]]', 2, true],
  ])('%s deeper than %d: %s', (text, max, expected) => {
    expect(nestsDeeperThan(text, max)).toBe(expected);
  });

  it('answers for a million levels without recursion', () => {
    expect(nestsDeeperThan(nested(1_000_000), MAX_JSON_DEPTH)).toBe(true);
    expect(nestsDeeperThan(`"${nested(1_000_000)}"`, MAX_JSON_DEPTH)).toBe(false);
  });
});
