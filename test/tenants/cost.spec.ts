import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { startSimulator, SimulatorHandle } from '../../src/simulator/server';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, submitBatch, uploadJsonl, waitForStatus } from '../support/batches';
import { startApi, startProcess, stopProcess } from '../support/stack';

/** USD per 1M tokens of gpt-4o-mini on each upstream, as configured below; half off for batches. */
const CHEAP = { input: 0.1, output: 0.4 };
const DEAR = { input: 0.3, output: 1.2 };
const DISCOUNT = 0.5;
const cost = (p: { input: number; output: number }, input: number, output: number) =>
  ((input * p.input + output * p.output) / 1e6) * (1 - DISCOUNT);

interface Answer {
  status: number;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Prices and cost-aware routing against an API and a worker of their own: two simulators
 * serving gpt-4o-mini, `dear` first by priority, `cheap` cheaper, the model routed `cheapest`.
 */
describe('cost: estimates, usage and cheapest routing', () => {
  let dear: SimulatorHandle;
  let cheap: SimulatorHandle;
  let cheapClosed = false;
  let api: ChildProcess;
  let worker: ChildProcess;
  let url: string;
  let key: string;
  let otherKey: string;
  let client: OpenAI;
  const batches: Batch[] = [];

  const get = async (path: string, as = key): Promise<Answer> => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${as}` } });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };

  beforeAll(async () => {
    dear = await startSimulator({ port: 0 });
    cheap = await startSimulator({ port: 0 });
    const configFile = join(mkdtempSync(join(tmpdir(), 'barge-cost-')), 'barge.yaml');
    writeFileSync(
      configFile,
      [
        'upstreams:',
        `  - { name: dear, baseUrl: "${dear.url}/v1", priority: 1 }`,
        `  - { name: cheap, baseUrl: "${cheap.url}/v1", priority: 2 }`,
        'routing: { breakerThreshold: 3, models: [{ model: "gpt-4o-mini", strategy: cheapest }] }',
        'pricing:',
        `  batchDiscount: ${DISCOUNT}`,
        '  defaultMaxOutputTokens: 1000',
        '  models:',
        `    - { model: gpt-4o-mini, upstream: cheap, input: ${CHEAP.input}, output: ${CHEAP.output} }`,
        `    - { model: "gpt-4o*", input: ${DEAR.input}, output: ${DEAR.output} }`,
      ].join('\n'),
    );
    const env = {
      BARGE_CONFIG: configFile,
      BARGE_TEMPORAL_TASK_QUEUE: `cost-${process.pid}`,
      BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `cost-upstream-${process.pid}`,
    };
    worker = startProcess('src/worker.js', env);
    const started = await startApi(env, '/readyz');
    api = started.api;
    url = started.url;
    key = await createTenantKey(uniqueTenant('cost'));
    otherKey = await createTenantKey(uniqueTenant('cost-other'));
    client = openaiFor(key, { baseUrl: url });
  });

  afterAll(async () => {
    await Promise.all([stopProcess(worker), stopProcess(api)]);
    await Promise.all([dear.close(), cheapClosed ? undefined : cheap.close()]);
  });

  it('estimates a file as a hand computation does, at the cheapest upstream', async () => {
    // Input tokens: ceil(chars / 4) of the strings under messages ("user" is 4 of them).
    const lines = [
      {
        ...chatLine('e-1'),
        body: {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'x'.repeat(396) }],
          max_tokens: 100,
        },
      },
      {
        ...chatLine('e-2'),
        body: {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'x'.repeat(196) }],
          max_completion_tokens: 30,
          n: 2,
        },
      },
      {
        ...chatLine('e-3'),
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(96) }] },
      },
      {
        ...chatLine('e-4'),
        body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'abcd' }], max_tokens: 10 },
      },
      {
        ...chatLine('e-5'),
        body: { model: 'mystery', messages: [{ role: 'user', content: 'abcd' }], max_tokens: 10 },
      },
      '{"custom_id": "broken"',
    ];
    const file = await uploadJsonl(client, lines);
    const { status, body } = await get(`/v1/files/${file.id}/cost_estimate?endpoint=/v1/chat/completions`);
    expect(status).toBe(200);
    // gpt-4o-mini: 100 + 50 + 25 = 175 in; 100 + 60 + 1,000 (the default) = 1,160 out, at `cheap`.
    const mini = cost(CHEAP, 175, 1160);
    // gpt-4o: 2 in, 10 out; routed by priority to `dear`, at the generic gpt-4o* price.
    const big = cost(DEAR, 2, 10);
    expect(body).toMatchObject({
      object: 'file.cost_estimate',
      file_id: file.id,
      endpoint: '/v1/chat/completions',
      requests: 5,
      invalid_requests: 1,
      input_tokens: 179,
      max_output_tokens: 1180,
      default_max_output_tokens: 1000,
      cost: { value: null, currency: 'usd', unpriced_models: ['mystery'] },
    });
    expect(body.by_model).toEqual([
      {
        model: 'gpt-4o',
        requests: 1,
        input_tokens: 2,
        max_output_tokens: 10,
        requests_without_max_tokens: 0,
        upstream: 'dear',
        price: {
          input_per_1m_tokens: DEAR.input,
          output_per_1m_tokens: DEAR.output,
          batch_discount: DISCOUNT,
          currency: 'usd',
        },
        cost: { value: expect.closeTo(big, 9), currency: 'usd', unpriced_models: [] },
      },
      {
        model: 'gpt-4o-mini',
        requests: 3,
        input_tokens: 175,
        max_output_tokens: 1160,
        requests_without_max_tokens: 1,
        upstream: 'cheap',
        price: {
          input_per_1m_tokens: CHEAP.input,
          output_per_1m_tokens: CHEAP.output,
          batch_discount: DISCOUNT,
          currency: 'usd',
        },
        cost: { value: expect.closeTo(mini, 9), currency: 'usd', unpriced_models: [] },
      },
      {
        model: 'mystery',
        requests: 1,
        input_tokens: 2,
        max_output_tokens: 10,
        requests_without_max_tokens: 0,
        upstream: 'dear',
        price: null,
        cost: { value: null, currency: 'usd', unpriced_models: ['mystery'] },
      },
    ]);

    const priced = await uploadJsonl(client, lines.slice(0, 3));
    const one = await get(`/v1/files/${priced.id}/cost_estimate?endpoint=/v1/chat/completions`);
    expect(one.body.cost).toEqual({ value: expect.closeTo(mini, 9), currency: 'usd', unpriced_models: [] });
  });

  it("answers 404 for another tenant's file and 400 for a bad or missing endpoint, in OpenAI's envelope", async () => {
    const file = await uploadJsonl(client, [chatLine('mine')]);
    const foreign = await get(`/v1/files/${file.id}/cost_estimate?endpoint=/v1/chat/completions`, otherKey);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error).toMatchObject({
      type: 'invalid_request_error',
      message: expect.stringContaining(file.id),
    });
    for (const query of ['?endpoint=/v1/images/generations', '']) {
      const bad = await get(`/v1/files/${file.id}/cost_estimate${query}`);
      expect({ query, status: bad.status }).toEqual({ query, status: 400 });
      expect(bad.body.error).toMatchObject({ type: 'invalid_request_error', param: 'endpoint' });
    }
  });

  it('sends to the cheaper upstream until it fails, then to the other, and costs each at its price', async () => {
    const n = 20;
    const run = async (label: string) => {
      const created = await submitBatch(
        client,
        Array.from({ length: n }, (_, i) => chatLine(`${label}-${i}`)),
      );
      const batch = await waitForStatus(client, created.id, ['completed', 'failed'], 90_000);
      expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      batches.push(batch);
      return batch;
    };

    // The cheaper upstream takes every request, although the other comes first by priority.
    const first = await run('cheap');
    expect(cheap.stats().byStatus['200']).toBe(n);
    expect(dear.stats().totalRequests).toBe(0);
    const a = await get(`/v1/usage?batch_id=${first.id}`);
    expect(a.body.by_upstream).toEqual([
      expect.objectContaining({
        upstream: 'cheap',
        requests: { completed: n, failed: 0 },
        input_tokens: first.usage!.input_tokens,
        output_tokens: first.usage!.output_tokens,
      }),
    ]);
    const costA = cost(CHEAP, first.usage!.input_tokens, first.usage!.output_tokens);
    expect(a.body.cost).toEqual({ value: expect.closeTo(costA, 9), currency: 'usd', unpriced_models: [] });

    // The cheaper one goes down: the rest fail over to the dearer one, and are costed at its price.
    await cheap.close();
    cheapClosed = true;
    const second = await run('dear');
    expect(dear.stats().byStatus['200']).toBe(n);
    const b = await get(`/v1/usage?batch_id=${second.id}`);
    expect(b.body.by_upstream).toEqual([
      expect.objectContaining({ upstream: 'dear', requests: { completed: n, failed: 0 } }),
    ]);
    const costB = cost(DEAR, second.usage!.input_tokens, second.usage!.output_tokens);
    expect(b.body.cost.value).toBeCloseTo(costB, 9);
    expect(b.body.by_upstream[0].price).toEqual({
      input_per_1m_tokens: DEAR.input,
      output_per_1m_tokens: DEAR.output,
      batch_discount: DISCOUNT,
      currency: 'usd',
    });

    // Usage is the sum of the batches, cost included; another tenant cannot read the batch.
    const all = await get('/v1/usage');
    expect(all.body.data).toHaveLength(1);
    expect(all.body.data[0].requests).toEqual({ total: 2 * n, completed: 2 * n, failed: 0 });
    expect(all.body.data[0].cost.value).toBeCloseTo(a.body.cost.value + b.body.cost.value, 9);
    const byModel = await get('/v1/usage?group_by=model');
    expect(byModel.body.data).toEqual([
      expect.objectContaining({ model: 'gpt-4o-mini', cost: all.body.data[0].cost }),
    ]);
    expect((await get(`/v1/usage?batch_id=${first.id}`, otherKey)).status).toBe(404);
  });
});
