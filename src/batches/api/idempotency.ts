import { createHash } from 'node:crypto';
import { conflict, invalidRequest } from '../../common/openai-error';
import { requireStorable } from '../../common/tenant-input';
import type { BatchRecord } from '../../database/entities/batch.entity';
import type { CreateBatchRequest } from './create-batch.request';

/**
 * Idempotent batch creation, Stripe's rule: a key names one request. Sent again with the same
 * request it returns the batch that request created; sent with a different one it is a 409,
 * never silently the first batch.
 */

/** Stripe's limit; longer keys are refused rather than cut (two keys differing late would collide). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export interface Idempotency {
  key: string;
  /** sha256 of the request's canonical form (see fingerprint). */
  fingerprint: string;
}

/** The key and the request's fingerprint, or null when the client sent no key. */
export function idempotencyOf(
  header: string | undefined,
  request: CreateBatchRequest,
  providerHeader: string | undefined,
  providerKey?: string,
): Idempotency | null {
  if (header === undefined || header === '') return null;
  const key = requireStorable(header, 'Idempotency-Key');
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalidRequest(
      `The Idempotency-Key header may be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters; this one has ${key.length}.`,
      'Idempotency-Key',
      'invalid_value',
    );
  }
  return { key, fingerprint: fingerprint(request, providerHeader, providerKey) };
}

/**
 * What makes two create requests the same: their checked parameters, not their bytes, so key
 * order, whitespace and ignored fields do not matter. Metadata entries are sorted by key. The
 * provider header counts too: it decides where the requests go; and so does the provider key
 * (x-barge-provider-key): it decides whose account they go on.
 */
export function fingerprint(
  request: CreateBatchRequest,
  providerHeader: string | undefined,
  providerKey?: string,
): string {
  const metadata = request.metadata
    ? Object.entries(request.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    : null;
  const canonical = JSON.stringify([
    'v1',
    request.inputFileId,
    request.endpoint,
    request.completionWindow,
    metadata,
    request.outputExpiresAfterSeconds,
    providerHeader || null,
    ...providerKeyPart(providerKey),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * The batch an earlier request with this key created, if this request is that request; a 409
 * otherwise. Batches created before fingerprints were stored have none and are returned as before.
 */
export function replay(existing: BatchRecord, idempotency: Idempotency): BatchRecord {
  if (
    existing.idempotencyFingerprint === null ||
    existing.idempotencyFingerprint === idempotency.fingerprint
  ) {
    return existing;
  }
  throw conflict(
    `This Idempotency-Key was already used with different parameters (for batch ${existing.id}). ` +
      'A key may only be reused to retry the same request; use a new key for a new request.',
    'idempotency_key_reused',
    'Idempotency-Key',
  );
}

/**
 * What a fingerprint holds of a provider key: a digest (inside the digest), appended only when
 * one was sent, so the fingerprints of requests without one are what they always were.
 */
export function providerKeyPart(providerKey: string | undefined): string[] {
  return providerKey ? [createHash('sha256').update(providerKey).digest('hex')] : [];
}
