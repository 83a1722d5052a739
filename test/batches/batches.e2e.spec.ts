import OpenAI from 'openai';
import { chatLine, submitBatch, InputLine, results, uploadJsonl, waitForStatus } from '../support/batches';
import { createTenantKey, openaiFor } from '../support/api';

/** The Batches API end to end: official SDK -> API -> Temporal workflow -> worker -> simulator. */
describe('batches end to end', () => {
  let client: OpenAI;

  beforeAll(async () => {
    client = openaiFor(await createTenantKey(`batches-e2e-${Date.now()}`));
  });

  const lineFor: Record<string, (id: string) => InputLine> = {
    '/v1/chat/completions': (id) => chatLine(id),
    '/v1/completions': (id) => ({
      custom_id: id,
      url: '/v1/completions',
      body: { model: 'gpt-3.5-turbo-instruct', prompt: `p ${id}` },
    }),
    '/v1/embeddings': (id) => ({
      custom_id: id,
      url: '/v1/embeddings',
      body: { model: 'text-embedding-3-small', input: `e ${id}` },
    }),
    '/v1/responses': (id) => ({
      custom_id: id,
      url: '/v1/responses',
      body: { model: 'gpt-4.1-mini', input: `r ${id}` },
    }),
    '/v1/moderations': (id) => ({ custom_id: id, url: '/v1/moderations', body: { input: `m ${id}` } }),
  };

  it.each(Object.keys(lineFor))('runs a %s batch: upload, create, poll, download', async (endpoint) => {
    const ids = Array.from({ length: 6 }, (_, i) => `${endpoint.split('/').pop()}-${i}`);
    const lines = ids.map((id) => ({ ...lineFor[endpoint](id), url: endpoint }));
    // One request the upstream refuses for good: it must land in the error file with its status.
    lines[5].body = { ...lines[5].body, simulate: { fail_times: 1_000_000, fail_status: 400 } };
    const created = await submitBatch(client, lines, {
      endpoint: endpoint as OpenAI.Batches.BatchCreateParams['endpoint'],
      metadata: { suite: 'e2e' },
    });
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      endpoint,
      metadata: { suite: 'e2e' },
    });

    const batch = await waitForStatus(client, created.id, ['completed', 'failed']);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 6, completed: 5, failed: 1 });
    expect(batch.in_progress_at).toEqual(expect.any(Number));
    expect(batch.finalizing_at).toEqual(expect.any(Number));
    expect(batch.completed_at).toEqual(expect.any(Number));
    // Moderation answers carry no usage, at OpenAI as here.
    if (endpoint !== '/v1/moderations') expect(batch.usage?.input_tokens).toBeGreaterThan(0);

    const { output, errors, ids: seen, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect([...seen].sort()).toEqual([...ids].sort());
    expect(output).toHaveLength(5);
    for (const line of output) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.response?.status_code).toBe(200);
      expect(line.error).toBeNull();
    }
    expect(errors).toEqual([
      expect.objectContaining({
        custom_id: ids[5],
        response: expect.objectContaining({ status_code: 400 }),
        error: null,
      }),
    ]);
    const outputFile = await client.files.retrieve(batch.output_file_id!);
    expect(outputFile.purpose).toBe('batch_output');
  });

  it('fails validation with every error and its line number', async () => {
    const created = await submitBatch(client, [
      chatLine('a'),
      '{"custom_id": "broken", ',
      chatLine('a'),
      { ...chatLine('b'), url: '/v1/embeddings' },
      chatLine('c', { stream: true }),
      { ...chatLine('d'), body: { model: 'other-model', messages: [] } },
      { custom_id: 'e', url: '/v1/chat/completions', body: undefined as unknown as Record<string, unknown> },
    ]);
    const batch = await waitForStatus(client, created.id, ['failed', 'completed']);
    expect(batch.status).toBe('failed');
    expect(batch.failed_at).toEqual(expect.any(Number));
    expect(batch.output_file_id).toBeNull();
    expect(batch.errors?.data ?? []).toEqual([
      expect.objectContaining({ code: 'invalid_json_line', line: 2 }),
      expect.objectContaining({ code: 'duplicate_custom_id', line: 3, param: 'custom_id' }),
      expect.objectContaining({ code: 'invalid_url', line: 4, param: 'url' }),
      expect.objectContaining({ code: 'streaming_unsupported', line: 5, param: 'body.stream' }),
      expect.objectContaining({ code: 'mismatched_model', line: 6, param: 'body.model' }),
      expect.objectContaining({ code: 'missing_required_parameter', line: 7, param: 'body' }),
    ]);
  });

  it('fails an empty file, and answers create-time mistakes at once', async () => {
    const empty = await client.files
      .create({
        file: await OpenAI.toFile(Buffer.from('\n'), 'empty.jsonl'),
        purpose: 'batch',
      })
      .catch((err) => err);
    // An upload that is evidently not JSONL may be refused at upload already; either way nothing runs.
    if (!(empty instanceof Error)) {
      const created = await client.batches.create({
        input_file_id: empty.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const batch = await waitForStatus(client, created.id, ['failed']);
      expect(batch.errors?.data?.[0]).toMatchObject({ code: 'empty_file' });
    }

    const file = await uploadJsonl(client, [chatLine('x')]);
    await expect(
      client.batches.create({
        input_file_id: 'file-doesnotexist',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/images' as never,
        completion_window: '24h',
      }),
    ).rejects.toMatchObject({ status: 400, param: 'endpoint' });
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '7d' as never,
      }),
    ).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    await expect(client.batches.retrieve('batch_doesnotexist')).rejects.toMatchObject({ status: 404 });
  });

  it('lists batches newest first across pages', async () => {
    const file = await uploadJsonl(client, [chatLine('list')]);
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push(
        (
          await client.batches.create({
            input_file_id: file.id,
            endpoint: '/v1/chat/completions',
            completion_window: '24h',
          })
        ).id,
      );
    }
    const page = await client.batches.list({ limit: 2 });
    expect(page.data.map((b) => b.id)).toEqual([made[2], made[1]]);
    expect(page.has_more).toBe(true);
    const seen: string[] = [];
    for await (const batch of client.batches.list({ limit: 2 })) seen.push(batch.id);
    expect(seen.slice(0, 3)).toEqual([made[2], made[1], made[0]]);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('cancels mid-flight: finished results kept, the rest batch_cancelled, then 409 on a second cancel', async () => {
    const lines = Array.from({ length: 120 }, (_, i) =>
      chatLine(`slow-${i}`, i < 5 ? {} : { simulate: { latency_ms: 60_000 } }),
    );
    const created = await submitBatch(client, lines);
    await waitForStatus(client, created.id, ['in_progress']);
    await waitForCompleted(client, created.id, 5);

    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));

    const batch = await waitForStatus(client, created.id, ['cancelled'], 30_000);
    expect(batch.cancelled_at).toEqual(expect.any(Number));
    const { output, errors, ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(120);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['slow-0', 'slow-1', 'slow-2', 'slow-3', 'slow-4']);
    expect(errors).toHaveLength(115);
    for (const line of errors)
      expect(line).toMatchObject({ response: null, error: { code: 'batch_cancelled' } });
    expect(batch.request_counts).toEqual({ total: 120, completed: 5, failed: 115 });

    const res = await fetch(`${client.baseURL}/batches/${created.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${client.apiKey}` },
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', code: 'batch_not_cancellable' },
    });
  });

  it('retries transient upstream faults durably and reports permanent ones with the upstream status', async () => {
    const lines = [
      chatLine('flaky-429', { simulate: { fail_times: 2, fail_status: 429, retry_after_ms: 100 } }),
      chatLine('flaky-500', { simulate: { fail_times: 2, fail_status: 500 } }),
      chatLine('bad-request', { simulate: { fail_times: 1_000_000, fail_status: 422 } }),
    ];
    const created = await submitBatch(client, lines);
    const batch = await waitForStatus(client, created.id, ['completed']);
    const { output, errors } = await results(client, batch);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['flaky-429', 'flaky-500']);
    expect(errors).toEqual([
      expect.objectContaining({
        custom_id: 'bad-request',
        response: expect.objectContaining({ status_code: 422 }),
      }),
    ]);
  });

  it('ends completed with no output file when every request failed, and no error file when none did', async () => {
    const refused = { simulate: { fail_times: 1_000_000, fail_status: 400 } };
    const allFailed = await submitBatch(client, [chatLine('nope-1', refused), chatLine('nope-2', refused)]);
    const failed = await waitForStatus(client, allFailed.id, ['completed', 'failed']);
    expect(failed).toMatchObject({
      status: 'completed',
      output_file_id: null,
      error_file_id: expect.stringMatching(/^file-/),
      request_counts: { total: 2, completed: 0, failed: 2 },
    });

    const allGood = await submitBatch(client, [chatLine('yes-1'), chatLine('yes-2')]);
    const good = await waitForStatus(client, allGood.id, ['completed', 'failed']);
    expect(good).toMatchObject({
      status: 'completed',
      output_file_id: expect.stringMatching(/^file-/),
      error_file_id: null,
    });
  });

  it('completes a 10,000-request batch with every custom_id exactly once', async () => {
    const n = 10_000;
    const lines = Array.from({ length: n }, (_, i) =>
      chatLine(`big-${i}`, i % 1000 === 7 ? { simulate: { fail_times: 1_000_000, fail_status: 400 } } : {}),
    );
    const created = await submitBatch(client, lines, {}, { filename: 'big.jsonl' });
    const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 180_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: n, completed: n - 10, failed: 10 });
    const { ids, duplicates, count, errors } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(count).toBe(n);
    expect(ids.size).toBe(n);
    expect(errors).toHaveLength(10);
  }, 240_000);

  // Concurrent with the cases above (it mostly waits out its window), so it comes last: Jest
  // starts it at once and awaits it in file order. A tenant of its own, made here: it starts
  // before the beforeAll above, and the listing case must see only its own batches.
  it.concurrent('expires at the end of the completion window, keeping what finished', async () => {
    const client = openaiFor(await createTenantKey(`batches-e2e-expiry-${Date.now()}`));
    const lines = Array.from({ length: 30 }, (_, i) =>
      chatLine(`exp-${i}`, i < 3 ? {} : { simulate: { latency_ms: 120_000 } }),
    );
    // The test stack allows a 20s window (BARGE_COMPLETION_WINDOWS); production offers 24h and 48h.
    const created = await submitBatch(client, lines, { completion_window: '20s' as never });
    expect(created.expires_at! - created.created_at).toBe(20);
    const batch = await waitForStatus(
      client,
      created.id,
      ['expired', 'completed', 'failed', 'cancelled'],
      60_000,
    );
    expect(batch.status).toBe('expired');
    expect(batch.expired_at).toEqual(expect.any(Number));
    const { output, errors, ids, duplicates } = await results(client, batch);
    expect(duplicates).toEqual([]);
    expect(ids.size).toBe(30);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['exp-0', 'exp-1', 'exp-2']);
    for (const line of errors) {
      expect(line.error).toEqual({
        code: 'batch_expired',
        message: 'This request could not be executed before the completion window expired.',
      });
    }
  });
});

async function waitForCompleted(client: OpenAI, id: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await client.batches.retrieve(id)).request_counts!.completed < atLeast) {
    if (Date.now() > deadline) throw new Error(`batch ${id} never reached ${atLeast} completed requests`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
