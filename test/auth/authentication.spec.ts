import OpenAI from 'openai';
import { ApiKeyStore } from '../../src/auth/api-key-store';
import { createTenant, openaiFor, uniqueTenant, withTestDb } from '../support/api';
import { apiUrl, waitFor } from '../support/stack';

const filesUrl = () => `${apiUrl()}/v1/files`;

async function errorOf(res: Response) {
  return { status: res.status, body: (await res.json()) as { error: Record<string, unknown> } };
}

/** ApiKeyGuard in front of /v1, against the test stack's API. */
describe('API key authentication', () => {
  it('refuses a request without a key, in the OpenAI envelope', async () => {
    const { status, body } = await errorOf(await fetch(filesUrl()));
    expect(status).toBe(401);
    expect(body.error).toEqual({
      message: expect.stringMatching(/^You didn't provide an API key/),
      type: 'authentication_error',
      param: null,
      code: 'invalid_api_key',
    });
  });

  it('refuses a header that is not Bearer auth like a missing key', async () => {
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'sk-barge-abc']) {
      const { status, body } = await errorOf(await fetch(filesUrl(), { headers: { authorization } }));
      expect(status).toBe(401);
      expect(body.error.message).toMatch(/^You didn't provide an API key/);
    }
  });

  it('refuses an unknown key through the SDK, echoing only a masked form of it', async () => {
    const wrong = `sk-barge-${'A'.repeat(36)}wxyz`;
    const err = await openaiFor(wrong, { maxRetries: 0 })
      .files.list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const { error } = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(error).toMatchObject({ message: 'Incorrect API key provided: sk-barge-AAA********wxyz.' });
  });

  it('admits a live key, records its use at most once a minute, and refuses it once revoked', async () => {
    const tenant = await createTenant(uniqueTenant('auth'));
    const client = openaiFor(tenant.key, { maxRetries: 0 });
    await client.files.list();

    const lastUsed = () =>
      withTestDb(
        async (db) => (await new ApiKeyStore(db).list()).find((k) => k.id === tenant.keyId)!.lastUsedAt,
      );
    const first = await waitFor('last_used_at', lastUsed, 5_000);
    await client.files.list();
    await new Promise((r) => setTimeout(r, 300));
    expect(await lastUsed()).toEqual(first);

    await withTestDb((db) => new ApiKeyStore(db).revoke(tenant.keyId));
    await expect(client.files.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('stores only the hash of a key', async () => {
    const tenant = await createTenant(uniqueTenant('auth-hash'));
    const rows = await withTestDb((db) =>
      db.query(`SELECT key_hash, prefix FROM api_keys WHERE id = $1`, [tenant.keyId]),
    );
    expect(JSON.stringify(rows)).not.toContain(tenant.key);
    expect(tenant.key.startsWith(rows[0].prefix)).toBe(true);
  });
});
