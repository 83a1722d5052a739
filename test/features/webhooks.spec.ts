import { Client, Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { createTenant, openaiFor, uniqueTenant, withTestDb } from '../support/api';
import { chatLine, submitBatch, waitForStatus } from '../support/batches';
import { apiUrl, ROOT, stackConfig, waitFor } from '../support/stack';
import {
  api,
  createEndpoint,
  deliveries,
  Receiver,
  type DeliveryObject,
  type EndpointObject,
  type ReceivedWebhook,
} from '../support/webhooks';

/**
 * Webhooks against the real stack: batches end, the worker's delivery workflows POST signed
 * events to receivers on 127.0.0.1, and the receivers verify them with the openai package and
 * the standardwebhooks library. The test profile retries after 1 s, doubling up to 4 s, and
 * gives up after 20 s (scripts/stack.sh), so outages and give-ups happen in seconds.
 *
 * The cases that wait on the clock (expiry, retries, giving up) run concurrently, each as a
 * tenant of its own (so no case sees another's endpoints, batches or deliveries). Jest starts
 * concurrent cases before any describe-level beforeAll, so those cases set up their own.
 */

interface EventBody {
  id: string;
  object: string;
  created_at: number;
  type: string;
  data: { id: string; request_counts?: Record<string, number>; output_file_id?: string | null };
}

async function verified(client: OpenAI, hook: ReceivedWebhook, secret: string): Promise<EventBody> {
  const headers = hook.headers as Record<string, string>;
  const viaOpenAI = (await client.webhooks.unwrap(hook.body, headers, secret)) as unknown as EventBody;
  const viaStandard = new Webhook(secret).verify(hook.body, headers) as EventBody;
  expect(viaStandard).toEqual(viaOpenAI);
  expect(headers['webhook-id']).toBe(viaOpenAI.id);
  return viaOpenAI;
}

async function eventsOf(batchId: string): Promise<{ id: string; type: string }[]> {
  return withTestDb((db) => db.query(`SELECT id, type FROM webhook_events WHERE batch_id = $1`, [batchId]));
}

describe('webhooks', () => {
  let key: string;
  let client: OpenAI;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  };
  const ownTenant = async (name: string) => {
    const own = (await createTenant(uniqueTenant(name))).key;
    return { key: own, client: openaiFor(own) };
  };

  beforeAll(async () => {
    key = (await createTenant(uniqueTenant('webhooks'))).key;
    client = openaiFor(key);
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.stop()));
  });

  it('delivers batch.completed in OpenAI shape, signed, thin or full, once per batch', async () => {
    const thinHook = await receiver();
    const fullHook = await receiver();
    const thin = await createEndpoint(key, {
      url: thinHook.url,
      event_types: ['batch.completed', 'batch.failed'],
      name: 'thin',
    });
    const full = await createEndpoint(key, {
      url: fullHook.url,
      event_types: ['batch.completed'],
      payload: 'full',
    });
    expect(thin).toMatchObject({ object: 'webhook_endpoint', status: 'enabled', url: thinHook.url });
    expect(thin.secret).toMatch(/^whsec_/);
    expect(thin.secret_hint).toBe(`whsec_...${thin.secret!.slice(-4)}`);
    // Later reads show the hint, never the secret.
    const read = await api<EndpointObject>(key, 'GET', `/v1/webhook_endpoints/${thin.id}`);
    expect(read.body.secret).toBeUndefined();
    expect(read.body.secret_hint).toBe(thin.secret_hint);
    const listed = await api<{ data: EndpointObject[]; has_more: boolean }>(
      key,
      'GET',
      '/v1/webhook_endpoints',
    );
    expect(listed.body.data.map((e) => e.id).sort()).toEqual([full.id, thin.id].sort());
    expect(JSON.stringify(listed.body)).not.toContain(thin.secret!);
    // Another tenant sees none of it.
    const other = (await createTenant(uniqueTenant('webhooks-other'))).key;
    expect((await api(other, 'GET', `/v1/webhook_endpoints/${thin.id}`)).status).toBe(404);

    const created = await submitBatch(client, [
      chatLine('a'),
      chatLine('b'),
      chatLine('c', { simulate: { fail_times: 1_000_000, fail_status: 400 } }),
    ]);
    const batch = await waitForStatus(client, created.id, ['completed']);
    await waitFor(
      'both webhooks',
      async () => thinHook.about(batch.id).length > 0 && fullHook.about(batch.id).length > 0,
    );

    const event = await verified(client, thinHook.about(batch.id)[0], thin.secret!);
    expect(event).toEqual({
      id: expect.stringMatching(/^evt_/),
      object: 'event',
      created_at: expect.any(Number),
      type: 'batch.completed',
      data: { id: batch.id },
    });
    expect(event.created_at).toBeGreaterThanOrEqual(batch.completed_at! - 1);
    const rich = await verified(client, fullHook.about(batch.id)[0], full.secret!);
    expect(rich.id).toBe(event.id);
    expect(rich.data).toMatchObject({
      id: batch.id,
      status: 'completed',
      request_counts: { total: 3, completed: 2, failed: 1 },
      output_file_id: batch.output_file_id,
      error_file_id: batch.error_file_id,
    });
    // One event for the one ending, and its delivery attempt is in the log.
    expect(await eventsOf(batch.id)).toEqual([{ id: event.id, type: 'batch.completed' }]);
    const log = await deliveries(key, thin.id);
    expect(log).toEqual([
      expect.objectContaining({
        event_id: event.id,
        attempt: 1,
        status: 'succeeded',
        response_status_code: 200,
      }),
    ]);
    // Give a duplicate a chance to show up: there is none.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(thinHook.about(batch.id)).toHaveLength(1);
  });

  it.concurrent(
    'sends batch.failed, batch.cancelled and batch.expired, and one event when the reconciler ends a batch',
    async () => {
      const { key, client } = await ownTenant('webhooks-ends');
      const hook = await receiver();
      const endpoint = await createEndpoint(key, {
        url: hook.url,
        event_types: ['batch.failed', 'batch.cancelled', 'batch.expired'],
      });
      const slow = (id: string) => chatLine(id, { simulate: { latency_ms: 60_000 } });

      // A broken line fails the batch at validation (the upload checks only the first line).
      const invalid = await submitBatch(client, [chatLine('ok'), '{"custom_id": "broken"']);
      const cancelled = await submitBatch(client, [slow('c1'), slow('c2')]);
      const expired = await submitBatch(client, [slow('e1')], { completion_window: '20s' as never });
      const terminated = await submitBatch(client, [slow('t1')]);

      await waitForStatus(client, cancelled.id, ['in_progress']);
      await client.batches.cancel(cancelled.id);
      // Terminated from the outside (as from the Web UI): the reconciler ends it `failed`.
      await waitForStatus(client, terminated.id, ['in_progress']);
      const connection = await Connection.connect({ address: stackConfig().temporal.address });
      try {
        await new Client({ connection }).workflow.getHandle(terminated.id).terminate('test: workflow gone');
      } finally {
        await connection.close();
      }

      const ends = {
        [invalid.id]: 'batch.failed',
        [cancelled.id]: 'batch.cancelled',
        [expired.id]: 'batch.expired',
        [terminated.id]: 'batch.failed',
      };
      await waitFor(
        'four events',
        async () => Object.keys(ends).every((id) => hook.about(id).length > 0),
        60_000,
      );
      for (const [id, type] of Object.entries(ends)) {
        const [event] = await Promise.all(hook.about(id).map((h) => verified(client, h, endpoint.secret!)));
        expect(event).toMatchObject({ type, data: { id } });
        expect(await eventsOf(id)).toEqual([{ id: event.id, type }]);
      }
    },
    90_000,
  );

  it.concurrent(
    're-delivers, with the same event id, after the receiver was down',
    async () => {
      const { key, client } = await ownTenant('webhooks-outage');
      const hook = await receiver();
      const endpoint = await createEndpoint(key, { url: hook.url, event_types: ['batch.completed'] });
      await hook.stop();
      const created = await submitBatch(client, [chatLine('outage')]);
      await waitForStatus(client, created.id, ['completed']);

      // The receiver stays down while attempts fail (connection refused), retried with backoff.
      const failed = await waitFor(
        'three failed attempts',
        async () => {
          const log = await deliveries(key, endpoint.id);
          return log.filter((d) => d.status === 'failed').length >= 3 && log;
        },
        20_000,
      );
      expect(failed.every((d) => d.error !== null && d.next_attempt_at !== null)).toBe(true);
      expect(new Set(failed.map((d) => d.event_id)).size).toBe(1);
      await hook.start(); // the same port again

      await waitFor('the webhook', async () => hook.about(created.id).length > 0, 20_000);
      const event = await verified(client, hook.about(created.id)[0], endpoint.secret!);
      expect(event.id).toBe(failed[0].event_id);
      const log = (await deliveries(key, endpoint.id)).reverse();
      expect(log.map((d) => d.attempt)).toEqual(log.map((_, i) => i + 1));
      expect(log[log.length - 1]).toMatchObject({
        status: 'succeeded',
        event_id: event.id,
        response_status_code: 200,
      });
      expect(log.slice(0, -1).every((d) => d.status === 'failed')).toBe(true);
    },
    60_000,
  );

  it.concurrent(
    'disables an endpoint that kept failing until the retries ran out, and says so',
    async () => {
      const { key, client } = await ownTenant('webhooks-give-up');
      const hook = await receiver();
      hook.status = 500;
      const endpoint = await createEndpoint(key, { url: hook.url, event_types: ['batch.completed'] });
      const created = await submitBatch(client, [chatLine('always-500')]);
      await waitForStatus(client, created.id, ['completed']);

      const disabled = await waitFor(
        'the endpoint disabled',
        async () => {
          const got = await api<EndpointObject>(key, 'GET', `/v1/webhook_endpoints/${endpoint.id}`);
          return got.body.status === 'disabled' && got.body;
        },
        45_000,
      );
      expect(disabled.disabled_reason).toMatch(
        /Disabled after \d+ failed attempts .* with no successful delivery/,
      );
      const log: DeliveryObject[] = await deliveries(key, endpoint.id);
      expect(log.length).toBeGreaterThanOrEqual(4);
      expect(log.every((d) => d.status === 'failed' && d.response_status_code === 500)).toBe(true);
      expect(hook.about(created.id).length).toBe(log.length);
      // The last attempt announced no further one.
      expect(log[0].next_attempt_at).toBeNull();

      // Fixed and enabled again: a test event goes through.
      hook.status = 204;
      const enabled = await api<EndpointObject>(key, 'POST', `/v1/webhook_endpoints/${endpoint.id}`, {
        status: 'enabled',
      });
      expect(enabled.body).toMatchObject({ status: 'enabled', disabled_reason: null });
      const test = await api<{ ok: boolean; response_status_code: number }>(
        key,
        'POST',
        `/v1/webhook_endpoints/${endpoint.id}/test`,
        {},
      );
      expect(test.body).toMatchObject({ ok: true, response_status_code: 204 });
    },
    60_000,
  );

  it('rotates the secret, optionally keeping the old one valid for a day', async () => {
    const hook = await receiver();
    const endpoint = await createEndpoint(key, { url: hook.url, event_types: ['batch.completed'] });
    const sendTest = async () => {
      const before = hook.received.length;
      const result = await api<{ ok: boolean; event_id: string }>(
        key,
        'POST',
        `/v1/webhook_endpoints/${endpoint.id}/test`,
        {
          event_type: 'batch.completed',
        },
      );
      expect(result.body.ok).toBe(true);
      expect(hook.received).toHaveLength(before + 1);
      return hook.received[before];
    };

    const kept = await api<EndpointObject>(
      key,
      'POST',
      `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`,
      {
        keep_previous_secret: true,
      },
    );
    expect(kept.body.secret).toMatch(/^whsec_/);
    expect(kept.body.secret).not.toBe(endpoint.secret);
    expect(kept.body.previous_secret_expires_at! - Date.now() / 1000).toBeGreaterThan(23.9 * 3600);
    const during = await sendTest();
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(await verified(client, during, endpoint.secret!)).toMatchObject({ type: 'batch.completed' });
    expect(await verified(client, during, kept.body.secret!)).toMatchObject({ type: 'batch.completed' });

    const dropped = await api<EndpointObject>(
      key,
      'POST',
      `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`,
      {},
    );
    const after = await sendTest();
    await verified(client, after, dropped.body.secret!);
    expect(() =>
      new Webhook(kept.body.secret!).verify(after.body, after.headers as Record<string, string>),
    ).toThrow();
    expect((await deliveries(key, endpoint.id)).filter((d) => d.test)).toHaveLength(2);
  });

  it('refuses receivers at private addresses, before connecting to them', async () => {
    for (const url of [
      'http://10.0.0.1/hook',
      'http://192.168.1.10:8080/hook',
      'http://172.16.0.1/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::ffff:10.0.0.1]/hook',
      'http://[fd00::1]/hook',
      'http://[fe80::1]/hook',
      'http://0.0.0.0/hook',
    ]) {
      const refused = await api<{ error: { code: string; param: string; message: string } }>(
        key,
        'POST',
        '/v1/webhook_endpoints',
        { url, event_types: ['batch.completed'] },
      );
      expect({
        url,
        status: refused.status,
        code: refused.body.error.code,
        param: refused.body.error.param,
      }).toEqual({
        url,
        status: 400,
        code: 'invalid_url',
        param: 'url',
      });
      expect(refused.body.error.message).toMatch(/loopback, private, link-local or reserved/);
    }
    const hook = await receiver();
    const endpoint = await createEndpoint(key, { url: hook.url, event_types: ['batch.completed'] });
    const moved = await api<{ error: { code: string } }>(
      key,
      'POST',
      `/v1/webhook_endpoints/${endpoint.id}`,
      {
        url: 'http://10.1.2.3/hook',
      },
    );
    expect(moved.status).toBe(400);
    expect(moved.body.error.code).toBe('invalid_url');
    expect(
      (
        await api<{ error: { param: string } }>(key, 'POST', '/v1/webhook_endpoints', {
          url: hook.url,
          event_types: ['batch.done'],
        })
      ).body.error.param,
    ).toBe('event_types[0]');
  });

  it('is managed from the CLI: create, list, test, rotate, delete', async () => {
    const hook = await receiver();
    const barge = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [join(ROOT, 'dist/src/cli/barge.js'), ...args, '--api-key', key, '--base-url', `${apiUrl()}/v1`],
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
    const created = await barge(
      'webhooks',
      'create',
      '--url',
      hook.url,
      '--events',
      'batch.completed',
      '--name',
      'cli',
    );
    expect(created.code).toBe(0);
    const secret = created.stdout.trim().split('\n').pop()!;
    expect(secret).toMatch(/^whsec_/);
    const listed = await barge('webhooks', 'list');
    expect(listed.code).toBe(0);
    const row = listed.stdout.split('\n').find((l) => l.includes(hook.url))!;
    expect(row).toContain('batch.completed');
    expect(listed.stdout).not.toContain(secret);
    const id = row.split(/\s+/)[0];
    const tested = await barge('webhooks', 'test', id);
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/^ok: batch.completed evt_\S+ -> HTTP 200/);
    await verified(client, hook.received[hook.received.length - 1], secret);
    const rotated = await barge('webhooks', 'rotate', id, '--keep-previous');
    expect(rotated.code).toBe(0);
    expect(rotated.stderr).toContain('stays valid until');
    expect((await barge('webhooks', 'delete', id)).code).toBe(0);
    expect((await api(key, 'GET', `/v1/webhook_endpoints/${id}`)).status).toBe(404);
    const missing = await barge('webhooks', 'delete', id);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
  });
});
