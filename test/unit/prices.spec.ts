import { costOf, PriceBook, roundUsd, strategies } from '../../src/upstreams/prices';
import { Upstream } from '../../src/upstreams/registry';
import { Router } from '../../src/upstreams/router';
import { outputBound } from '../../src/upstreams/token-estimate';

describe('PriceBook', () => {
  const book = new PriceBook({
    batchDiscount: 0.5,
    defaultMaxOutputTokens: 100,
    models: [
      { model: 'gpt-4o', input: 2.5, output: 10 },
      { model: 'gpt-4o*', upstream: 'cheap', input: 1, output: 4, batchDiscount: 0 },
      { model: 'gpt-4o*', input: 3, output: 12 },
    ],
  });

  it("prefers the upstream's own entry, then the first generic one that matches", () => {
    expect(book.price('gpt-4o', 'cheap')).toEqual({ input: 1, output: 4, batchDiscount: 0 });
    expect(book.price('gpt-4o', 'dear')).toEqual({ input: 2.5, output: 10, batchDiscount: 0.5 });
    expect(book.price('gpt-4o-mini', 'dear')).toEqual({ input: 3, output: 12, batchDiscount: 0.5 });
    expect(book.price('gpt-4o-mini', null)).toEqual({ input: 3, output: 12, batchDiscount: 0.5 });
    expect(book.price('llama', 'cheap')).toBeNull();
  });

  it('costs tokens per million, the batch discount taken off', () => {
    // (1,000,000 × 2.5 + 200,000 × 10) / 1e6 = 4.5 at list price; half of it for a batch.
    expect(
      costOf({ input: 2.5, output: 10, batchDiscount: 0.5 }, { input: 1_000_000, output: 200_000 }),
    ).toBe(2.25);
    expect(roundUsd(0.1 + 0.2)).toBe(0.3);
  });
});

describe('cheapest routing', () => {
  const upstreams = [
    new Upstream(upstreamConfig('dear', 10), 0, null),
    new Upstream(upstreamConfig('cheap', 20), 1, null),
    new Upstream(upstreamConfig('unpriced', 5), 2, null),
    new Upstream(upstreamConfig('cheap-twin', 30), 3, null),
  ];
  const prices = new PriceBook({
    batchDiscount: 0.5,
    defaultMaxOutputTokens: 100,
    models: [
      { model: '*', upstream: 'dear', input: 2, output: 2 },
      { model: '*', upstream: 'cheap', input: 1, output: 3 },
      { model: '*', upstream: 'cheap-twin', input: 1, output: 3 },
    ],
  });
  const strategyOf = strategies({
    strategy: 'priority',
    models: [{ model: 'gpt-*', strategy: 'cheapest' }],
  });
  const router = new Router(upstreams, { prices, strategyOf });
  const order = (model: string, tokens?: { input: number; output: number }) => {
    const route = router.route(model, '/v1/chat/completions', null, tokens && (() => tokens));
    return route.ok ? route.candidates.map((u) => u.name) : route.reason;
  };

  it('puts the cheapest first for the request, priority breaking ties, unpriced last', () => {
    // Input-heavy: 1×in + 3×out is cheaper than 2×in + 2×out.
    expect(order('gpt-4o', { input: 1000, output: 10 })).toEqual(['cheap', 'cheap-twin', 'dear', 'unpriced']);
    // Output-heavy: the other way round.
    expect(order('gpt-4o', { input: 10, output: 1000 })).toEqual(['dear', 'cheap', 'cheap-twin', 'unpriced']);
    // Without a size: by input plus output price (4 each: a tie, so priority decides).
    expect(order('gpt-4o')).toEqual(['dear', 'cheap', 'cheap-twin', 'unpriced']);
  });

  it('keeps priority order for models routed by priority, and never asks their size', () => {
    const size = jest.fn(() => ({ input: 1000, output: 0 }));
    const route = router.route('llama', '/v1/chat/completions', null, size);
    expect(route.ok && route.candidates.map((u) => u.name)).toEqual([
      'unpriced',
      'dear',
      'cheap',
      'cheap-twin',
    ]);
    expect(size).not.toHaveBeenCalled();
  });

  it('routes a pinned provider alone whatever its price', () => {
    const route = router.route('gpt-4o', '/v1/chat/completions', 'dear', () => ({ input: 1000, output: 0 }));
    expect(route.ok && route.candidates.map((u) => u.name)).toEqual(['dear']);
  });
});

describe('outputBound', () => {
  it("is the request's budget, else the default; nothing for embeddings and moderations", () => {
    expect(outputBound('/v1/chat/completions', { max_completion_tokens: 50, n: 2 }, 4096)).toBe(100);
    expect(outputBound('/v1/chat/completions', {}, 4096)).toBe(4096);
    expect(outputBound('/v1/embeddings', { max_tokens: 9 }, 4096)).toBe(0);
  });
});

function upstreamConfig(name: string, priority: number) {
  return {
    name,
    baseUrl: 'http://127.0.0.1:1/v1',
    headers: {},
    timeoutMs: 1000,
    models: ['*'],
    aliases: {},
    priority,
    limits: { maxConcurrency: 4, models: {} },
  };
}
