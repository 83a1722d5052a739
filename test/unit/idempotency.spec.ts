import type { CreateBatchRequest } from '../../src/batches/api/create-batch.request';
import {
  fingerprint,
  idempotencyOf,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  replay,
} from '../../src/batches/api/idempotency';
import { OpenAIError } from '../../src/common/openai-error';
import { BatchRecord } from '../../src/database/entities/batch.entity';

const request: CreateBatchRequest = {
  inputFileId: 'file-a',
  endpoint: '/v1/chat/completions',
  completionWindow: '24h',
  metadata: { a: '1', b: '2' },
  outputExpiresAfterSeconds: null,
};

const batchWith = (fp: string | null) =>
  Object.assign(new BatchRecord(), { id: 'batch_1', idempotencyFingerprint: fp });

function errorOf(fn: () => unknown): OpenAIError {
  try {
    fn();
  } catch (err) {
    return err as OpenAIError;
  }
  throw new Error('expected an error');
}

describe('idempotency', () => {
  it('has no key when the header is absent or empty', () => {
    expect(idempotencyOf(undefined, request, undefined)).toBeNull();
    expect(idempotencyOf('', request, undefined)).toBeNull();
  });

  it(`takes keys up to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters whole, and refuses longer ones instead of cutting them`, () => {
    const key = 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH);
    expect(idempotencyOf(key, request, undefined)?.key).toBe(key);
    expect(errorOf(() => idempotencyOf(`${key}x`, request, undefined))).toMatchObject({
      status: 400,
      param: 'Idempotency-Key',
    });
    expect(errorOf(() => idempotencyOf('a\u0000', request, undefined))).toMatchObject({
      code: 'invalid_text',
    });
  });

  it('fingerprints the parameters, not their order', () => {
    const reordered = { ...request, metadata: { b: '2', a: '1' } };
    expect(fingerprint(reordered, undefined)).toBe(fingerprint(request, undefined));
    expect(fingerprint(request, undefined)).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['another file', { ...request, inputFileId: 'file-b' }, undefined],
    ['another endpoint', { ...request, endpoint: '/v1/embeddings' as const }, undefined],
    ['another window', { ...request, completionWindow: '48h' }, undefined],
    ['other metadata', { ...request, metadata: { a: '1', b: '3' } }, undefined],
    ['no metadata', { ...request, metadata: null }, undefined],
    ['an output expiry', { ...request, outputExpiresAfterSeconds: 3600 }, undefined],
    ['a provider header', request, 'simulator'],
  ])('tells %s apart', (_name, other, provider) => {
    expect(fingerprint(other, provider)).not.toBe(fingerprint(request, undefined));
  });

  it('tells provider keys apart without holding one, and leaves keyless fingerprints as they were', () => {
    const keyless = fingerprint(request, 'simulator');
    expect(fingerprint(request, 'simulator', undefined)).toBe(keyless);
    const withKey = fingerprint(request, 'simulator', 'sk-mine');
    expect(withKey).not.toBe(keyless);
    expect(fingerprint(request, 'simulator', 'sk-other')).not.toBe(withKey);
    expect(idempotencyOf('key', request, 'simulator', 'sk-mine')!.fingerprint).toBe(withKey);
  });

  it('replays the same request, refuses a different one with 409, and replays rows without a fingerprint', () => {
    const mine = idempotencyOf('key', request, undefined)!;
    expect(replay(batchWith(mine.fingerprint), mine).id).toBe('batch_1');
    expect(replay(batchWith(null), mine).id).toBe('batch_1');
    const err = errorOf(() => replay(batchWith('0'.repeat(64)), mine));
    expect(err).toMatchObject({
      status: 409,
      code: 'idempotency_key_reused',
      param: 'Idempotency-Key',
      headers: { 'x-should-retry': 'false' },
    });
  });
});
