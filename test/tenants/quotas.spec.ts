import OpenAI, { toFile } from 'openai';
import { estimateTokens } from '../../src/upstreams/token-estimate';
import { TenantQuotas } from '../../src/tenants/tenant-quotas';
import { heldTokens } from '../../src/tenants/quotas';
import { withTestDb } from '../support/api';
import { chatLine, InputLine, submitBatch, uploadJsonl, waitForStatus } from '../support/batches';
import { stackConfig } from '../support/stack';
import { apiError, barge, quotaTenant, setQuotas } from './support';

const slow = (id: string, extra: Record<string, unknown> = {}) =>
  chatLine(id, { simulate: { latency_ms: 60_000 }, ...extra });

async function uploadBytes(client: OpenAI, bytes: number) {
  return client.files.create({
    file: await toFile(Buffer.alloc(bytes, 'x'), 'blob.bin'),
    purpose: 'user_data',
  });
}

describe('tenant quotas', () => {
  describe('active batches', () => {
    it('answers 429 at the limit, naming it and the use, and admits again once a batch ends', async () => {
      const t = await quotaTenant('quota-active');
      await setQuotas(t.name, { maxActiveBatches: 1 });
      const first = await submitBatch(t.client, [slow('a-1')]);
      const file = await uploadJsonl(t.client, [chatLine('b-1')]);
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;

      const refused = await apiError(t.client.batches.create(params));
      expect(refused.status).toBe(429);
      expect(refused.headers?.get('x-should-retry')).toBe('false');
      expect(refused.error).toEqual({
        message: expect.stringMatching(/has 1 active batches .* its limit is 1/),
        type: 'rate_limit_error',
        param: null,
        code: 'active_batch_limit_exceeded',
      });

      await t.client.batches.cancel(first.id);
      await waitForStatus(t.client, first.id, ['cancelled']);
      const second = await t.client.batches.create(params);
      expect(second.status).toBe('validating');
      await waitForStatus(t.client, second.id, ['completed']);
    });

    it('admits exactly the limit when creates race', async () => {
      const t = await quotaTenant('quota-race');
      await setQuotas(t.name, { maxActiveBatches: 2 });
      const file = await uploadJsonl(t.client, [slow('r-1')]);
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, () => t.client.batches.create(params)),
      );
      const created = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(created).toHaveLength(2);
      for (const r of refused) expect((r.reason as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
      for (const c of created) await t.client.batches.cancel(c.value.id);
    });

    it('replays, rather than refuses, racing creates with one Idempotency-Key at the last slot', async () => {
      const t = await quotaTenant('quota-idem');
      await setQuotas(t.name, { maxActiveBatches: 1 });
      const file = await uploadJsonl(t.client, [slow('i-1')]);
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;
      const headers = { 'Idempotency-Key': `idem-${t.name}` };
      const batches = await Promise.all(
        Array.from({ length: 4 }, () => t.client.batches.create(params, { headers })),
      );
      expect(new Set(batches.map((b) => b.id)).size).toBe(1);
      await t.client.batches.cancel(batches[0].id);
    });

    it('limits nobody without a limit (the configured default of the test stack)', async () => {
      const t = await quotaTenant('quota-none');
      const file = await uploadJsonl(t.client, [slow('n-1')]);
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;
      const batches = await Promise.all(Array.from({ length: 3 }, () => t.client.batches.create(params)));
      for (const b of batches) await t.client.batches.cancel(b.id);
    });
  });

  describe('stored bytes', () => {
    it('answers 429 for an upload that would pass the limit, and admits again after a delete', async () => {
      const t = await quotaTenant('quota-bytes');
      await setQuotas(t.name, { maxStorageBytes: 10_000 });
      const kept = await uploadBytes(t.client, 6_000);

      // Larger than the 4,000 bytes left: cut while streaming.
      const cut = await apiError(uploadBytes(t.client, 5_000));
      expect(cut.status).toBe(429);
      expect(cut.error).toMatchObject({
        code: 'storage_limit_exceeded',
        type: 'rate_limit_error',
        message: expect.stringMatching(
          /take 6000 bytes of its limit of 10000 bytes.*larger than the 4000 bytes left/,
        ),
      });
      await uploadBytes(t.client, 4_000); // exactly fills it
      const full = await apiError(uploadBytes(t.client, 1));
      expect(full.status).toBe(429);
      expect(full.error).toMatchObject({
        code: 'storage_limit_exceeded',
        message: expect.stringContaining('take 10000 bytes of its limit of 10000 bytes'),
      });

      await t.client.files.delete(kept.id);
      await uploadBytes(t.client, 6_000);
      const files = await t.client.files.list();
      expect(files.data.reduce((n, f) => n + f.bytes, 0)).toBe(10_000);
    });

    it('stores no more than the limit when uploads race', async () => {
      const t = await quotaTenant('quota-bytes-race');
      await setQuotas(t.name, { maxStorageBytes: 2_500 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, () => uploadBytes(t.client, 1_000)),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
      for (const o of outcomes) {
        if (o.status === 'rejected')
          expect((o.reason as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
      }
      const files = await t.client.files.list();
      expect(files.data).toHaveLength(2);
    });
  });

  describe('enqueued tokens', () => {
    const line = (id: string, extra: Record<string, unknown> = {}): InputLine =>
      chatLine(id, { max_tokens: 1_000, ...extra });
    const tokensOf = (lines: InputLine[]) => lines.reduce((n, l) => n + estimateTokens(l.body), 0);

    it('fails a batch over the quota with token_limit_exceeded and admits it once the running batch ends', async () => {
      const t = await quotaTenant('quota-tokens');
      const running = [
        line('run-1', { simulate: { latency_ms: 60_000 } }),
        line('run-2', { simulate: { latency_ms: 60_000 } }),
      ];
      const next = [line('next-1'), line('next-2')];
      const limit = tokensOf(running) + tokensOf(next) - 1;
      await setQuotas(t.name, { maxEnqueuedTokens: limit });

      const first = await submitBatch(t.client, running);
      await waitForStatus(t.client, first.id, ['in_progress']);
      const over = await waitForStatus(t.client, (await submitBatch(t.client, next)).id, [
        'failed',
        'completed',
      ]);
      expect(over.status).toBe('failed');
      expect(over.errors?.data).toEqual([
        {
          code: 'token_limit_exceeded',
          message: expect.stringContaining(
            `needs about ${tokensOf(next)} tokens, the tenant's running batches of that model hold ${tokensOf(running)}, and the limit is ${limit}`,
          ),
          param: null,
          line: null,
        },
      ]);

      // tenants list shows what the running batch holds.
      const listed = JSON.parse((await barge('tenants', 'list', '--tenant', t.name, '--json')).stdout);
      expect(listed[0].use.enqueuedTokens).toEqual({ 'gpt-4o-mini': tokensOf(running) });

      await t.client.batches.cancel(first.id);
      await waitForStatus(t.client, first.id, ['cancelled']);
      const again = await waitForStatus(t.client, (await submitBatch(t.client, next)).id, [
        'failed',
        'completed',
      ]);
      expect(again.status).toBe('completed');
    });

    it('holds nothing for a batch that failed validation, and a batch alone over the limit fails', async () => {
      const t = await quotaTenant('quota-tokens-alone');
      const lines = [line('a-1'), line('a-2')];
      await setQuotas(t.name, { maxEnqueuedTokens: tokensOf(lines) - 1 });
      const failed = await waitForStatus(t.client, (await submitBatch(t.client, lines)).id, [
        'failed',
        'completed',
      ]);
      expect(failed.errors?.data?.[0]).toMatchObject({ code: 'token_limit_exceeded' });
      expect(failed.errors?.data?.[0].message).toContain('hold 0');
      await setQuotas(t.name, { maxEnqueuedTokens: tokensOf(lines) });
      const ok = await waitForStatus(t.client, (await submitBatch(t.client, lines)).id, [
        'failed',
        'completed',
      ]);
      expect(ok.status).toBe('completed');
    });

    it('releases the share of recorded requests while a batch runs, and all of it when it ends', async () => {
      const t = await quotaTenant('quota-tokens-held');
      const quotas = (db: Parameters<Parameters<typeof withTestDb>[0]>[0]) =>
        new TenantQuotas(db, stackConfig().quotas);
      await withTestDb(async (db) => {
        const insert = (
          id: string,
          status: string,
          estimated: number,
          counts: [number, number, number],
          model: string,
        ) =>
          db.query(
            `INSERT INTO batches (id, tenant_id, endpoint, model, input_file_id, completion_window, status,
                                  request_total, request_completed, request_failed, estimated_tokens, created_at, expires_at)
             SELECT $1, $2, '/v1/chat/completions', $7, f.id, '24h', $3, $4, $5, $6, $8, now(), now() + interval '1 day'
               FROM files f WHERE f.tenant_id = $2 LIMIT 1`,
            [id, t.tenantId, status, counts[0], counts[1], counts[2], model, estimated],
          );
        const file = await uploadJsonl(t.client, [line('x')]);
        expect(file.id).toBeTruthy();
        await insert(`batch_h1${t.tenantId}`, 'in_progress', 1_000, [3, 1, 0], 'm-a');
        await insert(`batch_h2${t.tenantId}`, 'finalizing', 999, [3, 1, 1], 'm-a');
        await insert(`batch_h3${t.tenantId}`, 'in_progress', 500, [10, 0, 0], 'm-b');
        await insert(`batch_h4${t.tenantId}`, 'failed', 5_000, [3, 0, 0], 'm-a');
        await insert(`batch_h5${t.tenantId}`, 'completed', 5_000, [3, 3, 0], 'm-b');
        const expected = {
          'm-a':
            heldTokens({ estimatedTokens: 1_000, requestTotal: 3, requestCompleted: 1, requestFailed: 0 }) +
            heldTokens({ estimatedTokens: 999, requestTotal: 3, requestCompleted: 1, requestFailed: 1 }),
          'm-b': 500,
        };
        expect(expected['m-a']).toBe(667 + 333);
        expect(await quotas(db).enqueuedTokens(db, t.tenantId)).toEqual(expected);
        await db.query(`UPDATE batches SET status = 'cancelled' WHERE tenant_id = $1`, [t.tenantId]);
        expect(await quotas(db).enqueuedTokens(db, t.tenantId)).toEqual({});
      });
    });
  });

  describe('barge tenants', () => {
    it('sets overrides and lists limits with current use', async () => {
      const t = await quotaTenant('quota-cli');
      const set = await barge(
        'tenants',
        'set',
        '--tenant',
        t.name,
        '--max-active-batches',
        '3',
        '--max-storage-bytes',
        '1000000',
        '--max-enqueued-tokens',
        '50000',
      );
      expect(set.code).toBe(0);
      expect(set.stderr).toContain(`Updated the quotas of tenant "${t.name}"`);
      await uploadBytes(t.client, 1234);
      const batch = await submitBatch(t.client, [slow('cli-1')]);
      const table = await barge('tenants', 'list', '--tenant', t.name);
      expect(table.code).toBe(0);
      const [header, row] = table.stdout.trim().split('\n');
      expect(header).toMatch(
        /^TENANT\s+ACTIVE BATCHES\s+STORAGE BYTES\s+ENQUEUED TOKENS \(PER MODEL\)\s+UPSTREAMS$/,
      );
      expect(row).toContain(t.name);
      expect(row).toContain('1 / 3 (set)');
      expect(row).toMatch(/\d+ \/ 1000000 \(set\)/);
      expect(row).toMatch(/\sall$/);

      const json = JSON.parse((await barge('tenants', 'list', '--tenant', t.name, '--json')).stdout);
      expect(json).toEqual([
        expect.objectContaining({
          tenantName: t.name,
          limits: { maxActiveBatches: 3, maxStorageBytes: 1_000_000, maxEnqueuedTokens: 50_000 },
          use: expect.objectContaining({ activeBatches: 1, storageBytes: expect.any(Number) }),
        }),
      ]);
      // The batch's input file and the upload.
      expect(json[0].use.storageBytes).toBeGreaterThan(1234);

      const reset = await barge(
        'tenants',
        'set',
        '--tenant',
        t.name,
        '--max-active-batches',
        'default',
        '--max-storage-bytes',
        'unlimited',
        '--json',
      );
      expect(JSON.parse(reset.stdout)[0]).toMatchObject({
        limits: { maxActiveBatches: null, maxStorageBytes: null, maxEnqueuedTokens: 50_000 },
        overrides: { maxActiveBatches: null, maxStorageBytes: -1, maxEnqueuedTokens: 50_000 },
      });
      await t.client.batches.cancel(batch.id);
    });

    it('refuses bad usage', async () => {
      const cases: [string[], number, RegExp][] = [
        [['tenants', 'set', '--max-active-batches', '1'], 2, /needs --tenant/],
        [['tenants', 'set', '--tenant', 'x'], 2, /needs at least one of/],
        [['tenants', 'set', '--tenant', 'x', '--max-active-batches=-1'], 2, /whole number >= 0/],
        [['tenants', 'set', '--tenant', 'x', '--max-storage-bytes', '1e3'], 2, /whole number >= 0/],
        [
          ['tenants', 'set', '--tenant', 'no-such-tenant-ever', '--max-active-batches', '1'],
          1,
          /no tenant "no-such-tenant-ever"/,
        ],
        [['tenants', 'list', '--name', 'x'], 2, /Unknown option '--name' for tenants/],
        [['keys', 'list', '--max-active-batches', '1'], 2, /Unknown option '--max-active-batches' for keys/],
        [['tenants', 'frob'], 2, /unknown tenants command "frob"/],
      ];
      for (const [args, code, message] of cases) {
        const run = await barge(...args);
        expect({ args, code: run.code }).toEqual({ args, code });
        expect(run.stderr).toMatch(message);
      }
    });
  });
});
