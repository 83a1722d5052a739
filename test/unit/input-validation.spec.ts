import { validateLine } from '../../src/batches/validate/input-validation';

const line = (o: unknown) => JSON.stringify(o);
const good = {
  custom_id: 'r1',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
};

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
  ])('rejects %s', (_name, text, code, param) => {
    expect(validateLine(text, 42, '/v1/chat/completions')).toEqual({
      error: { code, message: expect.any(String), param, line: 42 },
    });
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
