import {
  bearerToken,
  generateApiKey,
  hashApiKey,
  isWellFormedApiKey,
  maskApiKey,
} from '../../src/auth/api-key';

describe('API keys', () => {
  it('look like sk-barge-<40 base62>, are unique, and are stored only as a SHA-256', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.secret).toMatch(/^sk-barge-[0-9A-Za-z]{40}$/);
    expect(a.secret).not.toBe(b.secret);
    expect(a.hash).toBe(hashApiKey(a.secret));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.secret.startsWith(a.prefix)).toBe(true);
    expect(a.prefix).toHaveLength('sk-barge-'.length + 6);
  });

  it('are masked in messages, and junk is not echoed at all', () => {
    const { secret } = generateApiKey();
    const masked = maskApiKey(secret);
    expect(masked.startsWith(secret.slice(0, 12))).toBe(true);
    expect(masked.endsWith(secret.slice(-4))).toBe(true);
    expect(masked).not.toContain(secret.slice(12, -4));
    expect(maskApiKey('<script>alert(1)</script>')).toBe('***');
    expect(isWellFormedApiKey(`${secret}x`)).toBe(false);
  });

  it('are read from a Bearer Authorization header only', () => {
    expect(bearerToken('Bearer sk-barge-abc')).toBe('sk-barge-abc');
    expect(bearerToken('bearer   sk-barge-abc ')).toBe('sk-barge-abc');
    expect(bearerToken('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
