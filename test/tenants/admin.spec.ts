import OpenAI, { toFile } from 'openai';
import { openaiFor, uniqueTenant } from '../support/api';
import { chatLine, submitBatch, uploadJsonl, waitForStatus } from '../support/batches';
import { apiUrl } from '../support/stack';
import { apiError, barge, quotaTenant } from './support';

const lastLine = (text: string) => text.trimEnd().split('\n').pop()!;

describe('admin keys', () => {
  it("read every tenant's batches and usage, act as no tenant, and leave tenant keys confined", async () => {
    const a = await quotaTenant('admin-a');
    const b = await quotaTenant('admin-b');
    const batchA = await waitForStatus(a.client, (await submitBatch(a.client, [chatLine('a-1')])).id, [
      'completed',
    ]);
    const batchB = await waitForStatus(b.client, (await submitBatch(b.client, [chatLine('b-1')])).id, [
      'completed',
    ]);

    const ops = uniqueTenant('ops');
    const created = await barge('keys', 'create', '--admin', '--tenant', ops, '--name', 'support');
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('Created admin key');
    const adminKey = lastLine(created.stdout);
    const admin = openaiFor(adminKey, { maxRetries: 0 });
    const listed = await barge('keys', 'list', '--tenant', ops);
    expect(listed.stdout.trim().split('\n')[1]).toMatch(/\sadmin$/);

    // Reads across tenants.
    expect((await admin.batches.retrieve(batchA.id)).id).toBe(batchA.id);
    expect(await admin.batches.retrieve(batchB.id)).toEqual(batchB);
    const seen = new Set<string>();
    for await (const batch of admin.batches.list({ limit: 100 })) {
      seen.add(batch.id);
      if (seen.has(batchA.id) && seen.has(batchB.id)) break;
    }
    expect([seen.has(batchA.id), seen.has(batchB.id)]).toEqual([true, true]);

    const get = async (key: string, query: string) => {
      const res = await fetch(`${apiUrl()}/v1/usage${query}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return {
        status: res.status,
        body: (await res.json()) as Record<string, unknown> & { data: { tenant: string }[] },
      };
    };
    const one = await get(adminKey, `?batch_id=${batchB.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      object: 'usage.batch',
      batch_id: batchB.id,
      requests: { total: 1, completed: 1 },
    });
    const across = await get(adminKey, '?group_by=model');
    expect(across.body.data.map((r) => r.tenant)).toEqual(expect.arrayContaining([a.name, b.name]));
    // A tenant key's usage names no tenant and holds only its own.
    const own = await get(a.key, '');
    expect(own.body.data).toEqual([expect.objectContaining({ batches: 1 })]);
    expect(own.body.data[0]).not.toHaveProperty('tenant');

    // Acts as no tenant: every other route is 403, before any body is read.
    const file = await uploadJsonl(a.client, [chatLine('x')]);
    // Thunks: a request started early would reject before anything awaits it.
    const upload = await toFile(Buffer.from('{}\n'), 'x.jsonl');
    const refusals: (() => Promise<unknown>)[] = [
      () => admin.files.list(),
      () => admin.files.retrieve(file.id),
      () => admin.files.create({ file: upload, purpose: 'batch' }),
      () =>
        admin.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        }),
      () => admin.batches.cancel(batchA.id),
    ];
    for (const refusal of refusals) {
      const err = await apiError(refusal());
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect(err.error).toMatchObject({ type: 'permission_error', code: 'admin_key_not_allowed' });
    }

    // Tenant keys still cannot read each other's batches.
    await expect(a.client.batches.retrieve(batchB.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const foreignUsage = await get(a.key, `?batch_id=${batchB.id}`);
    expect(foreignUsage.status).toBe(404);

    // `?tenant=NAME` narrows an admin key's reads to one tenant.
    const listOf = async (key: string, query: string) => {
      const res = await fetch(`${apiUrl()}/v1/batches${query}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return { status: res.status, body: (await res.json()) as { data: { id: string }[]; error?: unknown } };
    };
    const onlyA = await listOf(adminKey, `?tenant=${a.name}&limit=100`);
    expect(onlyA.body.data.map((b) => b.id)).toEqual([batchA.id]);
    const usageB = await get(adminKey, `?tenant=${b.name}&group_by=model`);
    expect(usageB.body.data.map((r) => r.tenant)).toEqual([b.name]);
    expect((await get(adminKey, `?tenant=${b.name}&batch_id=${batchA.id}`)).status).toBe(404);
    const nobody = await listOf(adminKey, '?tenant=no-such-tenant-here');
    expect(nobody.status).toBe(400);
    expect(nobody.body.error).toMatchObject({
      param: 'tenant',
      message: "No tenant named 'no-such-tenant-here'.",
    });
    // A tenant key may name itself (nothing changes), never another tenant.
    expect((await listOf(a.key, `?tenant=${a.name}`)).body.data.map((x) => x.id)).toEqual([batchA.id]);
    for (const refused of [await listOf(a.key, `?tenant=${b.name}`), await get(a.key, `?tenant=${b.name}`)]) {
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatchObject({ param: 'tenant', code: 'invalid_value' });
    }
  });
});
