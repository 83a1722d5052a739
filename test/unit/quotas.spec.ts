import { buildConfig } from '../../src/config/config';
import {
  effectiveLimits,
  exceeds,
  heldTokens,
  parseOverride,
  toStoredOverride,
  UNLIMITED,
} from '../../src/tenants/quotas';

const none = { maxActiveBatches: null, maxStorageBytes: null, maxEnqueuedTokens: null };

describe('tenant quotas (pure logic)', () => {
  it('takes the override, else the configured default; -1 lifts the limit', () => {
    const defaults = { maxActiveBatches: 10, maxStorageBytes: 1_000, maxEnqueuedTokens: undefined };
    expect(effectiveLimits(defaults, none)).toEqual({
      maxActiveBatches: 10,
      maxStorageBytes: 1_000,
      maxEnqueuedTokens: null,
    });
    expect(
      effectiveLimits(defaults, { maxActiveBatches: 0, maxStorageBytes: UNLIMITED, maxEnqueuedTokens: 5 }),
    ).toEqual({ maxActiveBatches: 0, maxStorageBytes: null, maxEnqueuedTokens: 5 });
  });

  it('parses override values as the CLI takes them', () => {
    expect(parseOverride('max-active-batches', '0')).toBe(0);
    expect(parseOverride('max-active-batches', '12')).toBe(12);
    expect(parseOverride('max-active-batches', 'unlimited')).toBe('unlimited');
    expect(parseOverride('max-active-batches', 'default')).toBe('default');
    for (const bad of ['-1', '1.5', '1e3', '', 'lots', '99999999999999999999']) {
      expect(() => parseOverride('max-storage-bytes', bad)).toThrow(
        /--max-storage-bytes wants a whole number/,
      );
    }
    expect([toStoredOverride('default'), toStoredOverride('unlimited'), toStoredOverride(7)]).toEqual([
      null,
      UNLIMITED,
      7,
    ]);
  });

  it('counts a use at the limit as within it', () => {
    expect(exceeds(null, 1e12, 1)).toBe(false);
    expect(exceeds(3, 2, 1)).toBe(false);
    expect(exceeds(3, 3, 1)).toBe(true);
    expect(exceeds(0, 0, 1)).toBe(true);
  });

  it('holds the estimate less the share of recorded requests, rounded up', () => {
    const held = (
      estimatedTokens: number,
      requestTotal: number,
      requestCompleted: number,
      requestFailed = 0,
    ) => heldTokens({ estimatedTokens, requestTotal, requestCompleted, requestFailed });
    expect(held(1_000, 4, 0)).toBe(1_000);
    expect(held(1_000, 4, 1)).toBe(750);
    expect(held(1_000, 3, 1)).toBe(667);
    expect(held(1_000, 4, 2, 2)).toBe(0);
    expect(held(1_000, 4, 5)).toBe(0);
    expect(held(1_000, 0, 0)).toBe(0);
  });

  it('reads the default quotas from the environment', () => {
    const base = {
      BARGE_POSTGRES_URL: 'postgres://x@y/z',
      BARGE_STORAGE_ENDPOINT: 'http://127.0.0.1:9000',
      BARGE_STORAGE_ACCESS_KEY: 'a',
      BARGE_STORAGE_SECRET_KEY: 'b',
      BARGE_STORAGE_BUCKET: 'barge',
    };
    expect(buildConfig(base).quotas).toEqual({});
    expect(
      buildConfig({
        ...base,
        BARGE_QUOTA_MAX_ACTIVE_BATCHES: '5',
        BARGE_QUOTA_MAX_STORAGE_BYTES: '1048576',
        BARGE_QUOTA_MAX_ENQUEUED_TOKENS: '2000000',
      }).quotas,
    ).toEqual({ maxActiveBatches: 5, maxStorageBytes: 1_048_576, maxEnqueuedTokens: 2_000_000 });
    expect(() => buildConfig({ ...base, BARGE_QUOTA_MAX_ACTIVE_BATCHES: '-2' })).toThrow(
      /quotas.maxActiveBatches \(BARGE_QUOTA_MAX_ACTIVE_BATCHES\)/,
    );
  });
});
