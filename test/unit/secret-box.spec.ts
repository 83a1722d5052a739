import { randomBytes } from 'node:crypto';
import { SecretBox, SecretBoxError } from '../../src/common/secret-box';

const newKey = () => randomBytes(32).toString('base64');

describe('SecretBox', () => {
  const key = newKey();
  const box = new SecretBox(key);

  it('seals and opens, never showing the plaintext', () => {
    const sealed = box.seal('whsec_c2VjcmV0', 'webhook_endpoint:wh_1');
    expect(sealed).toMatch(/^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('c2VjcmV0');
    expect(box.open(sealed, 'webhook_endpoint:wh_1')).toBe('whsec_c2VjcmV0');
    // A fresh IV each time: equal secrets do not give equal ciphertexts.
    expect(box.seal('whsec_c2VjcmV0', 'webhook_endpoint:wh_1')).not.toBe(sealed);
  });

  it('refuses a value of another context, an altered one, and one of an unknown key', () => {
    const sealed = box.seal('secret', 'webhook_endpoint:wh_1');
    expect(() => box.open(sealed, 'webhook_endpoint:wh_2')).toThrow(SecretBoxError);
    const [v, id, payload] = sealed.split('.');
    const bytes = Buffer.from(payload, 'base64url');
    bytes[14] ^= 1;
    expect(() => box.open(`${v}.${id}.${bytes.toString('base64url')}`, 'webhook_endpoint:wh_1')).toThrow(
      SecretBoxError,
    );
    expect(() => new SecretBox(newKey()).open(sealed, 'webhook_endpoint:wh_1')).toThrow(/unknown key/);
    for (const junk of ['', 'plain', 'v2.x.y', `v1.${id}`, `v1.${id}.AAAA`, `${sealed}.more`]) {
      expect(() => box.open(junk, 'webhook_endpoint:wh_1')).toThrow(SecretBoxError);
    }
  });

  it('opens values sealed by a previous key after a rotation, and tells they are stale', () => {
    const sealed = box.seal('old', 'ctx');
    const rotated = new SecretBox(newKey(), [key]);
    expect(rotated.open(sealed, 'ctx')).toBe('old');
    expect(rotated.isStale(sealed)).toBe(true);
    expect(rotated.isStale(rotated.seal('new', 'ctx'))).toBe(false);
    expect(() => new SecretBox('c2hvcnQ=')).toThrow(/32 bytes/);
  });

  it('is absent without a configured key', () => {
    expect(SecretBox.fromConfig({})).toBeNull();
    expect(SecretBox.fromConfig({ encryptionKey: key })).toBeInstanceOf(SecretBox);
  });
});
