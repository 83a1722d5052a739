import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, results, waitForStatus } from '../support/batches';
import { apiUrl, ROOT } from '../support/stack';

/** POST /v1/batches/{id}/retry through the real stack (and `barge batches retry`). */

/** What these tests read of an answer: a Batch, or an error. */
interface Answer {
  id: string;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string>;
  error: { code: string; param: string | null };
}

const post = async (key: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(`${apiUrl()}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer };
};

/** 50 lines, every fifth refused by the upstream for good (20%), written in varied styles. */
function inputLines(): { text: string; fails: boolean }[] {
  return Array.from({ length: 50 }, (_, i) => {
    const fails = i % 5 === 3;
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `question ${i}` }],
      ...(fails && { simulate: { fail_times: 1_000_000, fail_status: 400 } }),
    };
    // Key order, spacing and escapes of the user's own file: kept byte for byte.
    const text =
      i % 2 === 0
        ? JSON.stringify({ custom_id: `q-${i}`, method: 'POST', url: '/v1/chat/completions', body })
        : `{ "body" : ${JSON.stringify(body, null, 0).replace('question', 'qu\\u0065stion')},  "custom_id":"q-${i}" }`;
    return { text, fails };
  });
}

describe('retry of what failed', () => {
  let key: string;
  let client: OpenAI;

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('retry'));
    client = openaiFor(key);
  });

  it('makes a batch of exactly the failed requests, their lines byte for byte, linked both ways', async () => {
    const lines = inputLines();
    const file = await client.files.create({
      file: await toFile(Buffer.from(lines.map((l) => l.text).join('\n') + '\n'), 'mixed.jsonl'),
      purpose: 'batch',
    });
    const original = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { team: 'eval' },
    });
    const ended = await waitForStatus(client, original.id, ['completed']);
    expect(ended.request_counts).toEqual({ total: 50, completed: 40, failed: 10 });

    const retried = await post(
      key,
      `/v1/batches/${original.id}/retry`,
      {},
      { 'idempotency-key': `retry-${original.id}` },
    );
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({
      object: 'batch',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { team: 'eval', barge_retry_of: original.id },
    });
    const input = await (await client.files.content(retried.body.input_file_id)).text();
    const failing = lines.filter((l) => l.fails).map((l) => l.text);
    expect(failing).toHaveLength(10);
    expect(input).toBe(failing.join('\n') + '\n');
    expect((await client.batches.retrieve(original.id)).metadata).toEqual({
      team: 'eval',
      barge_retried_by: retried.body.id,
    });
    // The same Idempotency-Key answers the same retry, not a second one.
    const again = await post(
      key,
      `/v1/batches/${original.id}/retry`,
      {},
      { 'idempotency-key': `retry-${original.id}` },
    );
    expect(again.body.id).toBe(retried.body.id);

    const second = await waitForStatus(client, retried.body.id, ['completed']);
    expect(second.model).toBe(ended.model);
    expect(second.request_counts).toEqual({ total: 10, completed: 0, failed: 10 });
    const { errors } = await results(client, second);
    expect(errors.map((e) => e.custom_id).sort()).toEqual(
      lines.flatMap((l, i) => (l.fails ? [`q-${i}`] : [])).sort(),
    );

    // Nothing of that kind: 400. With a window of its own.
    const none = await post(key, `/v1/batches/${original.id}/retry`, { include: ['expired'] });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('nothing_to_retry');
    const windowed = await post(key, `/v1/batches/${original.id}/retry`, { completion_window: '48h' });
    expect(windowed.body.completion_window).toBe('48h');
    expect(
      (await post(key, `/v1/batches/${original.id}/retry`, { include: ['everything'] })).body.error.param,
    ).toBe('include[0]');
  }, 90_000);

  it('answers 409 for a batch still running, and retries the cancelled requests of a cancelled batch', async () => {
    const slow = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify(chatLine(`s-${i}`, i < 2 ? {} : { simulate: { latency_ms: 60_000 } })),
    );
    const file = await client.files.create({
      file: await toFile(Buffer.from(slow.join('\n')), 'slow.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await waitForStatus(client, batch.id, ['in_progress']);
    const running = await post(key, `/v1/batches/${batch.id}/retry`, {});
    expect(running.status).toBe(409);
    expect(running.body.error.code).toBe('batch_not_ended');

    await waitFor2(async () => (await client.batches.retrieve(batch.id)).request_counts!.completed >= 2);
    await client.batches.cancel(batch.id);
    const cancelled = await waitForStatus(client, batch.id, ['cancelled']);
    const { errors } = await results(client, cancelled);
    const unexecuted = errors.filter((e) => e.error?.code === 'batch_cancelled').map((e) => e.custom_id);
    expect(unexecuted.length).toBeGreaterThan(0);

    // From the CLI, as a tenant.
    const cli = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          join(ROOT, 'dist/src/cli/barge.js'),
          'batches',
          'retry',
          batch.id,
          '--include',
          'cancelled',
          '--api-key',
          key,
          '--base-url',
          `${apiUrl()}/v1`,
        ],
        (err, stdout) => resolve({ code: err ? 1 : 0, stdout }),
      ),
    );
    expect(cli.code).toBe(0);
    const retryId = cli.stdout.trim().split('\n').pop()!;
    const retry = await client.batches.retrieve(retryId);
    expect(retry.metadata).toMatchObject({ barge_retry_of: batch.id });
    const input = await (await client.files.content(retry.input_file_id)).text();
    const ids = input
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(ids.sort()).toEqual(unexecuted.sort());
    await client.batches.cancel(retryId);
  }, 90_000);
});

async function waitFor2(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 250));
  }
}
