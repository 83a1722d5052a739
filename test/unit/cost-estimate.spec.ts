import { Readable } from 'node:stream';
import { CostEstimator } from '../../src/files/cost-estimate';
import { PriceBook } from '../../src/upstreams/prices';
import { Upstream } from '../../src/upstreams/registry';
import { Router } from '../../src/upstreams/router';

const upstream = (name: string, priority: number, models = ['*']) =>
  new Upstream(
    {
      name,
      baseUrl: 'http://127.0.0.1:1/v1',
      headers: {},
      timeoutMs: 1000,
      models,
      aliases: {},
      priority,
      limits: { maxConcurrency: 4, models: {} },
    },
    priority,
    null,
  );

const pricing = {
  batchDiscount: 0.5,
  defaultMaxOutputTokens: 1000,
  models: [
    { model: 'gpt-4o-mini', upstream: 'cheap', input: 0.1, output: 0.4 },
    { model: 'gpt-4o-mini', input: 0.15, output: 0.6 },
    { model: 'emb-*', input: 0.02, output: 0 },
  ],
};
const prices = new PriceBook(pricing);

const estimator = (cheapest: boolean) =>
  new CostEstimator(
    new Router([upstream('dear', 1), upstream('cheap', 2), upstream('llama-host', 3, ['llama*'])], {
      prices,
      strategyOf: () => (cheapest ? 'cheapest' : 'priority'),
    }),
    prices,
    pricing.defaultMaxOutputTokens,
  );

/** A file streamed in small pieces, lines cut across them, as storage hands it over. */
function fileOf(lines: unknown[]): Readable {
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
  const bytes = Buffer.from(text);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 7) pieces.push(bytes.subarray(i, i + 7));
  return Readable.from(pieces);
}

const chat = (id: string, model: string, content: string, extra: object = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content }], ...extra },
});

describe('CostEstimator', () => {
  // Input tokens: ceil(chars / 4) of every string under messages ('user' counts: 4 chars).
  const lines = [
    chat('a', 'gpt-4o-mini', 'x'.repeat(396), { max_tokens: 100 }), // (4 + 396) / 4 = 100 in, 100 out
    chat('b', 'gpt-4o-mini', 'x'.repeat(196), { max_completion_tokens: 50, n: 2 }), // 50 in, 100 out
    '',
    chat('c', 'gpt-4o-mini', 'x'.repeat(96)), // 25 in, the default 1,000 out
    chat('d', 'llama-3', 'x'.repeat(4)), // 2 in, 1,000 out; no price
    { custom_id: 'e', body: { model: 'gpt-4o-mini' } }, // no messages: refused by validation
    'not json',
  ];

  it('counts, estimates and prices each model at the first upstream of its route', async () => {
    const estimate = await estimator(false).estimate('file-1', '/v1/chat/completions', fileOf(lines));
    // gpt-4o-mini on `dear` (first by priority), the generic price:
    // (175 × 0.15 + 1,200 × 0.6) / 1e6 × 0.5 = (26.25 + 720) / 2e6 = 0.000373125
    expect(estimate.by_model[0]).toEqual({
      model: 'gpt-4o-mini',
      requests: 3,
      input_tokens: 175,
      max_output_tokens: 1200,
      requests_without_max_tokens: 1,
      upstream: 'dear',
      price: { input_per_1m_tokens: 0.15, output_per_1m_tokens: 0.6, batch_discount: 0.5, currency: 'usd' },
      cost: { value: 0.000373125, currency: 'usd', unpriced_models: [] },
    });
    expect(estimate.by_model[1]).toMatchObject({
      model: 'llama-3',
      requests: 1,
      input_tokens: 2,
      max_output_tokens: 1000,
      upstream: 'dear',
      price: null,
      cost: { value: null, unpriced_models: ['llama-3'] },
    });
    expect(estimate).toMatchObject({
      object: 'file.cost_estimate',
      file_id: 'file-1',
      endpoint: '/v1/chat/completions',
      requests: 4,
      invalid_requests: 2,
      input_tokens: 177,
      max_output_tokens: 2200,
      default_max_output_tokens: 1000,
      cost: { value: null, currency: 'usd', unpriced_models: ['llama-3'] },
    });
  });

  it('assumes the cheapest upstream when the model routes by price', async () => {
    const estimate = await estimator(true).estimate(
      'file-1',
      '/v1/chat/completions',
      fileOf(lines.slice(0, 4)),
    );
    // (175 × 0.1 + 1,200 × 0.4) / 1e6 × 0.5 = 0.00024875
    expect(estimate.by_model).toHaveLength(1);
    expect(estimate.by_model[0]).toMatchObject({ upstream: 'cheap', cost: { value: 0.00024875 } });
    expect(estimate.cost).toEqual({ value: 0.00024875, currency: 'usd', unpriced_models: [] });
  });

  it('bounds no output for embeddings', async () => {
    const estimate = await estimator(false).estimate(
      'file-2',
      '/v1/embeddings',
      fileOf([
        {
          custom_id: 'e',
          url: '/v1/embeddings',
          method: 'POST',
          body: { model: 'emb-3', input: 'abcdefgh' },
        },
      ]),
    );
    expect(estimate).toMatchObject({ requests: 1, input_tokens: 2, max_output_tokens: 0 });
    expect(estimate.by_model[0]).toMatchObject({
      requests_without_max_tokens: 0,
      cost: { value: 0.00000002 },
    });
  });
});
