import type { BargeConfig } from '../config/config';

/**
 * Tenant quotas as plain logic: which limit applies (the operator's override, else the
 * configured default) and what a batch still holds of the enqueued-token quota. The SQL in
 * TenantQuotas mirrors `heldTokens`; the unit tests pin both to the same numbers.
 */

export const QUOTA_NAMES = ['maxActiveBatches', 'maxStorageBytes', 'maxEnqueuedTokens'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

/** Limits in effect; null: no limit. */
export type QuotaLimits = Record<QuotaName, number | null>;

/** A tenant's overrides as stored: null, the configured default applies; UNLIMITED, no limit. */
export type QuotaOverrides = Record<QuotaName, number | null>;

export const UNLIMITED = -1;

/** How an operator names an override on the command line: a number, `unlimited` or `default`. */
export type OverrideValue = number | 'unlimited' | 'default';

export function effectiveLimits(defaults: BargeConfig['quotas'], overrides: QuotaOverrides): QuotaLimits {
  const pick = (name: QuotaName): number | null => {
    const override = overrides[name];
    if (override === null) return defaults[name] ?? null;
    return override === UNLIMITED ? null : override;
  };
  return {
    maxActiveBatches: pick('maxActiveBatches'),
    maxStorageBytes: pick('maxStorageBytes'),
    maxEnqueuedTokens: pick('maxEnqueuedTokens'),
  };
}

/** The stored form of an override value. */
export function toStoredOverride(value: OverrideValue): number | null {
  if (value === 'default') return null;
  if (value === 'unlimited') return UNLIMITED;
  return value;
}

/** Parses an override from the command line; throws a message meant for the operator. */
export function parseOverride(flag: string, text: string): OverrideValue {
  if (text === 'default' || text === 'unlimited') return text;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new Error(`--${flag} wants a whole number >= 0, "unlimited" or "default", not "${text}"`);
  }
  return Number(text);
}

/** Whether adding `adding` to `use` passes `limit` (null: no limit). */
export function exceeds(limit: number | null, use: number, adding: number): boolean {
  return limit !== null && use + adding > limit;
}

/**
 * What a running batch still holds of its tenant's enqueued-token quota: its estimate, less
 * the share of its requests already recorded (each request counts as an equal share), rounded
 * up. A batch that ended holds nothing (the callers only sum batches that have not ended).
 */
export function heldTokens(batch: {
  estimatedTokens: number;
  requestTotal: number;
  requestCompleted: number;
  requestFailed: number;
}): number {
  const remaining = Math.max(batch.requestTotal - batch.requestCompleted - batch.requestFailed, 0);
  return Math.ceil((batch.estimatedTokens * remaining) / Math.max(batch.requestTotal, 1));
}

/** SQL of `heldTokens` over a `batches` row aliased `b`. */
export const HELD_TOKENS_SQL = `ceil(b.estimated_tokens::numeric * greatest(b.request_total - b.request_completed - b.request_failed, 0)
  / greatest(b.request_total, 1))`;

export const describeLimit = (limit: number | null): string => (limit === null ? 'unlimited' : String(limit));
