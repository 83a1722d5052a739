import { chatLine, submitBatch, uploadJsonl, waitForStatus } from '../support/batches';
import { withTestDb } from '../support/api';
import { TenantQuotas } from '../../src/tenants/tenant-quotas';
import { stackConfig } from '../support/stack';
import { apiError, barge, quotaTenant } from './support';

/** The test stack has one upstream, `simulator` (every model routes to it). */
describe('upstream allow-lists per tenant', () => {
  it('answers 400 as unknown for an upstream the tenant may not pin, by header or metadata', async () => {
    const t = await quotaTenant('upstreams');
    const set = await barge('tenants', 'set', '--tenant', t.name, '--upstreams', 'elsewhere');
    expect(set.code).toBe(0);
    expect(set.stderr).toContain('no upstream "elsewhere" is configured');
    const file = await uploadJsonl(t.client, [chatLine('u-1')]);
    const params = {
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    } as const;

    const byHeader = await apiError(
      t.client.batches.create(params, { headers: { 'x-barge-provider': 'simulator' } }),
    );
    expect(byHeader.status).toBe(400);
    expect(byHeader.error).toEqual({
      message: "Unknown provider 'simulator'. Configured: none.",
      type: 'invalid_request_error',
      param: 'x-barge-provider',
      code: 'invalid_value',
    });
    // Exactly the answer for a name nobody configured.
    const unknown = await apiError(
      t.client.batches.create(params, { headers: { 'x-barge-provider': 'nowhere' } }),
    );
    expect(unknown.error).toEqual({
      ...(byHeader.error as object),
      message: "Unknown provider 'nowhere'. Configured: none.",
    });

    const byMetadata = await apiError(
      t.client.batches.create({ ...params, metadata: { barge_provider: 'simulator' } }),
    );
    expect(byMetadata.status).toBe(400);
    expect(byMetadata.error).toMatchObject({ param: 'metadata.barge_provider', code: 'invalid_value' });

    // Not pinning still routes as configured.
    const unpinned = await t.client.batches.create(params);
    expect((await waitForStatus(t.client, unpinned.id, ['completed', 'failed'])).status).toBe('completed');
    const listed = await barge('tenants', 'list', '--tenant', t.name);
    expect(listed.stdout.split('\n')[0]).toMatch(/UPSTREAMS$/);
    expect(listed.stdout.split('\n')[1]).toMatch(/elsewhere$/);

    await barge('tenants', 'set', '--tenant', t.name, '--upstreams', 'simulator,elsewhere');
    const pinned = await submitBatch(
      t.client,
      [chatLine('u-2')],
      {},
      { headers: { 'x-barge-provider': 'simulator' } },
    );
    expect((await waitForStatus(t.client, pinned.id, ['completed', 'failed'])).status).toBe('completed');

    await barge('tenants', 'set', '--tenant', t.name, '--upstreams', 'none');
    expect(
      (await apiError(t.client.batches.create(params, { headers: { 'x-barge-provider': 'simulator' } })))
        .status,
    ).toBe(400);

    const all = await barge('tenants', 'set', '--tenant', t.name, '--upstreams', 'all', '--json');
    expect(JSON.parse(all.stdout)[0].allowedUpstreams).toBeNull();
    await withTestDb(async (db) => {
      expect(await new TenantQuotas(db, stackConfig().quotas).allowedUpstreams(t.tenantId)).toBeNull();
    });
    const again = await t.client.batches.create(params, { headers: { 'x-barge-provider': 'simulator' } });
    expect(again.status).toBe('validating');
  });

  it('refuses bad --upstreams values', async () => {
    const run = await barge('tenants', 'set', '--tenant', 'x', '--upstreams', 'a b,c');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--upstreams wants "all", "none" or upstream names/);
  });
});
