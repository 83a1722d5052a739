import { createHash } from 'node:crypto';
import { newId } from '../common/ids';

/**
 * The shape of Barge API keys: `sk-barge-` and 40 base62 characters (about 238 random bits).
 * Only the SHA-256 of the whole key is stored; a fast hash is right for high-entropy secrets,
 * which cannot be guessed, and it lets a lookup go straight to the unique index.
 */
export const KEY_PREFIX = 'sk-barge-';
const RANDOM_LENGTH = 40;
const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH}}$`);
/** Random characters kept in the stored prefix, so people can tell their keys apart. */
const VISIBLE_CHARS = 6;

export interface NewApiKey {
  secret: string;
  hash: string;
  prefix: string;
}

export function generateApiKey(): NewApiKey {
  const secret = newId(KEY_PREFIX, RANDOM_LENGTH);
  return { secret, hash: hashApiKey(secret), prefix: secret.slice(0, KEY_PREFIX.length + VISIBLE_CHARS) };
}

export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function isWellFormedApiKey(secret: string): boolean {
  return KEY_PATTERN.test(secret);
}

/** How an error message may echo a key back: enough to recognise it, never enough to use it. */
export function maskApiKey(secret: string): string {
  if (!isWellFormedApiKey(secret)) return '***';
  return `${secret.slice(0, KEY_PREFIX.length + 3)}${'*'.repeat(8)}${secret.slice(-4)}`;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
