import { OpenAIError } from '../../src/common/openai-error';
import { parseCreateBatch } from '../../src/batches/api/create-batch.request';

const windows = ['24h', '48h'];
const valid = { input_file_id: 'file-abc', endpoint: '/v1/chat/completions', completion_window: '24h' };

function errorOf(body: unknown): OpenAIError {
  try {
    parseCreateBatch(body, windows);
  } catch (err) {
    return err as OpenAIError;
  }
  throw new Error('expected a validation error');
}

describe('parseCreateBatch', () => {
  it('accepts a valid request', () => {
    expect(parseCreateBatch({ ...valid, metadata: { team: 'a' } }, windows)).toEqual({
      inputFileId: 'file-abc',
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
      metadata: { team: 'a' },
      outputExpiresAfterSeconds: null,
    });
  });

  it('gives a request without completion_window the default window', () => {
    const { completion_window: _omitted, ...bare } = valid;
    expect(parseCreateBatch(bare, windows, '48h').completionWindow).toBe('48h');
    expect(parseCreateBatch({ ...bare, completion_window: null }, windows, '24h').completionWindow).toBe(
      '24h',
    );
    // Without a configured default it is OpenAI's 400.
    expect(() => parseCreateBatch(bare, windows)).toThrow(
      expect.objectContaining({
        status: 400,
        param: 'completion_window',
        code: 'missing_required_parameter',
      }),
    );
  });

  it('accepts any configured window, and only those', () => {
    const configured = ['1h', '24h', '48h', '72h', '7d'];
    for (const w of configured) {
      expect(parseCreateBatch({ ...valid, completion_window: w }, configured).completionWindow).toBe(w);
    }
    expect(() => parseCreateBatch({ ...valid, completion_window: '2h' }, configured)).toThrow(
      expect.objectContaining({ status: 400, param: 'completion_window', code: 'invalid_value' }),
    );
  });

  it.each([
    [{ ...valid, input_file_id: undefined }, 'input_file_id'],
    [{ ...valid, endpoint: '/v1/images/generations' }, 'endpoint'],
    [{ ...valid, completion_window: '1h' }, 'completion_window'],
    [{ ...valid, metadata: { k: 1 } }, 'metadata.k'],
    [
      { ...valid, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      'metadata',
    ],
    [{ ...valid, metadata: { ['k'.repeat(65)]: 'v' } }, `metadata.${'k'.repeat(65)}`],
    [{ ...valid, metadata: { k: 'v'.repeat(513) } }, 'metadata.k'],
    [
      { ...valid, output_expires_after: { anchor: 'created_at', seconds: 10 } },
      'output_expires_after.seconds',
    ],
  ])('rejects %j naming %s', (body, param) => {
    const err = errorOf(body);
    expect(err).toBeInstanceOf(OpenAIError);
    expect(err.status).toBe(400);
    expect(err.param).toBe(param);
  });

  // Text Postgres cannot store, in every field that is stored: 400 invalid_text naming it.
  it.each([
    ['input_file_id with a NUL', { ...valid, input_file_id: 'file-\u0000' }, 'input_file_id'],
    ['input_file_id with a lone surrogate', { ...valid, input_file_id: '\ud800' }, 'input_file_id'],
    ['endpoint with a NUL', { ...valid, endpoint: '/v1/chat/completions\u0000' }, 'endpoint'],
    [
      'completion_window with a lone surrogate',
      { ...valid, completion_window: '24h\udc00' },
      'completion_window',
    ],
    ['a metadata key with a NUL', { ...valid, metadata: { 'k\u0000': 'v' } }, 'metadata'],
    ['a metadata value with a NUL', { ...valid, metadata: { k: 'v\u0000' } }, 'metadata.k'],
    ['a metadata value with a lone surrogate', { ...valid, metadata: { k: 'v\ud800' } }, 'metadata.k'],
  ])('refuses %s', (_name, body, param) => {
    expect(errorOf(body)).toMatchObject({ status: 400, param, code: 'invalid_text' });
  });

  it('answers an input_file_id no file can have like an unknown file', () => {
    for (const id of ['f'.repeat(200), 'file-\nx', 'file-é']) {
      expect(errorOf({ ...valid, input_file_id: id })).toMatchObject({ status: 404, param: 'input_file_id' });
    }
  });

  it('bounds its echoes, also of values too deep to print', () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    for (const body of [
      { ...valid, endpoint: '/v1/'.repeat(10_000) },
      { ...valid, endpoint: deep },
      { ...valid, completion_window: deep },
    ]) {
      const err = errorOf(body);
      expect(err.status).toBe(400);
      expect(err.message.length).toBeLessThan(500);
    }
  });

  it('accepts metadata with paired surrogates (emoji)', () => {
    expect(parseCreateBatch({ ...valid, metadata: { mood: '😀' } }, windows).metadata).toEqual({
      mood: '😀',
    });
  });
});
