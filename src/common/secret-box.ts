import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Secrets Barge keeps on behalf of tenants (webhook signing secrets, upstream keys), encrypted
 * at rest with AES-256-GCM under a key from the configuration (`secrets.encryptionKey`).
 *
 * A sealed value is text: `v1.<key id>.<base64url(iv | ciphertext | tag)>`. The key id (the
 * first 8 hex digits of the key's SHA-256) says which key sealed it, so keys can be rotated:
 * the new key seals, and the old ones listed in `secrets.previousEncryptionKeys` still open
 * what they sealed. `context` is authenticated additional data: a value sealed for one row
 * (e.g. `webhook_endpoint:<id>`) does not open as another's, so ciphertexts cannot be swapped
 * between rows.
 */

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBoxError extends Error {}

interface Key {
  id: string;
  bytes: Buffer;
}

function keyOf(base64: string): Key {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== 32) throw new SecretBoxError('an encryption key must be 32 bytes, base64-encoded');
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 8), bytes };
}

export class SecretBox {
  private readonly current: Key;
  private readonly keys = new Map<string, Key>();

  /** `key` seals and opens; `previous` only open (values sealed before a key rotation). */
  constructor(key: string, previous: readonly string[] = []) {
    this.current = keyOf(key);
    for (const k of [this.current, ...previous.map(keyOf)]) if (!this.keys.has(k.id)) this.keys.set(k.id, k);
  }

  /** The box of the configured keys, or null when no key is configured. */
  static fromConfig(secrets: {
    encryptionKey?: string;
    previousEncryptionKeys?: string[];
  }): SecretBox | null {
    return secrets.encryptionKey
      ? new SecretBox(secrets.encryptionKey, secrets.previousEncryptionKeys)
      : null;
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const sealed = Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    return `${VERSION}.${this.current.id}.${sealed}`;
  }

  /** The plaintext; SecretBoxError when the value is malformed, sealed by an unknown key, altered, or of another context. */
  open(sealed: string, context: string): string {
    const [version, keyId, payload, ...rest] = sealed.split('.');
    if (version !== VERSION || !keyId || payload === undefined || rest.length > 0) {
      throw new SecretBoxError('not a sealed secret');
    }
    const key = this.keys.get(keyId);
    if (!key)
      throw new SecretBoxError(
        `sealed with an unknown key (${keyId}); is secrets.previousEncryptionKeys complete?`,
      );
    const bytes = Buffer.from(payload, 'base64url');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SecretBoxError('the sealed secret does not open: altered, or sealed for another context');
    }
  }

  /** Whether `sealed` was sealed by an older key (re-seal it to finish a key rotation). */
  isStale(sealed: string): boolean {
    return sealed.split('.')[1] !== this.current.id;
  }
}
