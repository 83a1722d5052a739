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
});
