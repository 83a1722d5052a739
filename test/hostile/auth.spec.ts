import { ApiKeyStore } from '../../src/auth/api-key-store';
import { createTenant, uniqueTenant, withTestDb } from '../support/api';
import {
  bearer,
  expectAnswer,
  expectRawAnswer,
  hostileSuite,
  itStillServesNormalBatches,
  rawExchange,
  send,
} from './support';

/** Hostile input: API keys. Every refusal is a 401 in the envelope, before any body is read. */
describe('hostile: authentication', () => {
  const suite = hostileSuite('auth');
  let revokedKey: string;

  beforeAll(async () => {
    const revoked = await createTenant(uniqueTenant('hostile-auth-revoked'));
    await withTestDb((db) => new ApiKeyStore(db).revoke(revoked.keyId));
    revokedKey = revoked.key;
  });

  const unknownKey = `sk-barge-${'Z'.repeat(40)}`;
  // [case, Authorization header (KEY: the suite's live key, REVOKED: a revoked one), status]
  const headers: [string, string | undefined, number][] = [
    ['no Authorization header', undefined, 401],
    ['an empty header', '', 401],
    ['the scheme alone', 'Bearer', 401],
    ['the scheme and a space', 'Bearer ', 401],
    ['Basic auth', 'Basic dXNlcjpwYXNz', 401],
    ['a key without scheme', 'KEY', 401],
    ['a lower-case scheme (accepted, as the RFC says)', 'bearer KEY', 200],
    ['extra spaces around the key (accepted)', 'Bearer    KEY   ', 200],
    ['two tokens', 'Bearer KEY KEY', 401],
    ['a key too short', 'Bearer sk-barge-abc', 401],
    ['an unknown well-formed key', `Bearer ${unknownKey}`, 401],
    ['a revoked key', 'Bearer REVOKED', 401],
    ['the key with one character more', 'Bearer KEYx', 401],
    ['the key with its last character cut', 'Bearer KEY<cut>', 401],
    ['SQL in the key', "Bearer sk-barge-' OR '1'='1", 401],
    ['an 8 KB token', `Bearer ${'A'.repeat(8000)}`, 401],
    ['Latin-1 bytes in the token', 'Bearer sk-barge-\u00e9\u00e8\u00ff', 401],
    ['a tab inside the value', 'Bearer\tKEY', 200],
  ];

  it.each(headers)('%s', async (_name, header, status) => {
    const key = suite.tenant().key;
    const value = header
      ?.replace('REVOKED', revokedKey)
      .replace('KEY<cut>', key.slice(0, -1))
      .replaceAll('KEY', key);
    const answer = await send('GET', '/v1/files?limit=1', {
      headers: value === undefined ? {} : { authorization: value },
    });
    expectAnswer(
      answer,
      status === 401 ? { status, code: 'invalid_api_key', type: 'authentication_error' } : { status },
    );
    // An echo of a key is never the key.
    if (status === 401) expect(answer.text).not.toContain(key);
  });

  it.each([
    ['the key in the query string', '/v1/files?api_key=KEY', {}],
    ['the key in an x-api-key header', '/v1/files', { 'x-api-key': 'KEY' }],
    ['the key as a cookie', '/v1/files', { cookie: 'authorization=Bearer KEY' }],
  ])('refuses %s', async (_name, path, headers: Record<string, string>) => {
    const key = suite.tenant().key;
    const answer = await send('GET', path.replace('KEY', key), {
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replace('KEY', key)])),
    });
    expectAnswer(answer, { status: 401, code: 'invalid_api_key' });
  });

  it.each([
    ['an unknown route', 'GET', '/v1/does-not-exist'],
    ['a known path with the wrong method', 'PUT', '/v1/batches'],
    ['the root', 'GET', '/'],
    ['a path outside /v1', 'GET', '/admin'],
  ])('answers 401 for %s without a key (nothing is disclosed)', async (_name, method, path) => {
    expectAnswer(await send(method, path), { status: 401, code: 'invalid_api_key' });
  });

  it.each([['/healthz'], ['/readyz'], ['/HEALTHZ'], ['/healthz/']])(
    'serves %s without a key',
    async (path) => {
      expectAnswer(await send('GET', path), { status: 200 });
    },
  );

  // The key is checked before any of the body is read: the 401 comes while the body is still
  // "on its way" (only its first bytes were sent), for JSON bodies and uploads alike.
  const bodiesBeforeAuth: [string, string, string, string, string | null][] = [
    ['a JSON body', 'POST /v1/batches', 'application/json', '{"input_file_id":', null],
    [
      'an upload',
      'POST /v1/files',
      'multipart/form-data; boundary=b',
      '--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n',
      null,
    ],
    ['a JSON body with a wrong key', 'POST /v1/batches', 'application/json', '{"a":', 'Bearer sk-barge-nope'],
    [
      'an upload with a revoked key',
      'POST /v1/files',
      'multipart/form-data; boundary=b',
      '--b\r\n',
      'REVOKED',
    ],
  ];

  it.each(bodiesBeforeAuth)('answers 401 before reading %s', async (_name, line, type, start, auth) => {
    const head =
      `${line} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 10000000\r\n` +
      (auth ? `Authorization: ${auth === 'REVOKED' ? `Bearer ${revokedKey}` : auth}\r\n` : '') +
      '\r\n';
    const result = await rawExchange([head, start], { waitMs: 1_500 });
    expectRawAnswer(result, { status: 401, code: 'invalid_api_key' });
  });

  it('accepts the live key (the suite key works)', async () => {
    expectAnswer(await send('GET', '/v1/files?limit=1', { headers: bearer(suite.tenant().key) }), {
      status: 200,
    });
  });

  itStillServesNormalBatches(suite);
});
