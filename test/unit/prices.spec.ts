import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type BargeConfig } from '../../src/config/config';
import { costOf, PriceBook, roundUsd, strategies } from '../../src/upstreams/prices';
import { Upstream } from '../../src/upstreams/registry';
import { Router } from '../../src/upstreams/router';
import { outputBound } from '../../src/upstreams/token-estimate';

const required = {
  BARGE_POSTGRES_URL: 'postgres://u:p@db:5432/barge',
  BARGE_STORAGE_ENDPOINT: 'http://minio:9000',
  BARGE_STORAGE_ACCESS_KEY: 'ak',
  BARGE_STORAGE_SECRET_KEY: 'sk',
  BARGE_STORAGE_BUCKET: 'barge',
};

function configOf(yaml: string, env: NodeJS.ProcessEnv = {}): BargeConfig {
  const file = join(mkdtempSync(join(tmpdir(), 'barge-prices-')), 'barge.yaml');
  writeFileSync(file, yaml);
  return buildConfig({ ...required, ...env, BARGE_CONFIG: file });
}

const TWO_UPSTREAMS = `
upstreams:
  - { name: dear, baseUrl: "http://127.0.0.1:1/v1", priority: 10 }
  - { name: cheap, baseUrl: "http://127.0.0.1:2/v1", priority: 20 }
  - { name: free-ish, baseUrl: "http://127.0.0.1:3/v1", priority: 30, models: ["llama-*"] }
`;

describe('pricing configuration', () => {
  it('defaults to no prices, half off for batches, priority routing', () => {
    const config = configOf('{}');
    expect(config.pricing).toEqual({ batchDiscount: 0.5, defaultMaxOutputTokens: 4096, models: [] });
    expect(config.routing.strategy).toBe('priority');
    expect(config.routing.models).toEqual([]);
  });

  it('reads prices per model and upstream, and the discount and strategy from the environment', () => {
    const config = configOf(
      `${TWO_UPSTREAMS}
pricing:
  models:
    - { model: "gpt-4o*", upstream: cheap, input: 1, output: 4, batchDiscount: 0 }
    - { model: "gpt-4o*", input: "2.5", output: 10 }
routing:
  models: [{ model: "gpt-4o*", strategy: cheapest }]
`,
      { BARGE_PRICING_BATCH_DISCOUNT: '0.25', BARGE_ROUTING_STRATEGY: 'cheapest' },
    );
    expect(config.pricing.batchDiscount).toBe(0.25);
    expect(config.pricing.models[1]).toEqual({ model: 'gpt-4o*', input: 2.5, output: 10 });
    expect(config.routing.strategy).toBe('cheapest');
  });

  it('stops at a bad price, discount, strategy or upstream, naming the setting', () => {
    const bad =
      (yaml: string, env: NodeJS.ProcessEnv = {}) =>
      () =>
        configOf(`${TWO_UPSTREAMS}${yaml}`, env);
    expect(bad('pricing: { models: [{ model: gpt-4o, input: -1, output: 1 }] }')).toThrow(
      /pricing\.models\.0\.input/,
    );
    expect(bad('pricing: { models: [{ model: gpt-4o, input: 1 }] }')).toThrow(/pricing\.models\.0\.output/);
    expect(bad('', { BARGE_PRICING_BATCH_DISCOUNT: '1.5' })).toThrow(
      /pricing\.batchDiscount \(BARGE_PRICING_BATCH_DISCOUNT\)/,
    );
    expect(bad('routing: { models: [{ model: "*", strategy: random }] }')).toThrow(
      /routing\.models\.0\.strategy/,
    );
    expect(bad('pricing: { models: [{ model: gpt-4o, upstream: nope, input: 1, output: 1 }] }')).toThrow(
      /pricing\.models\.0\.upstream: no upstream named "nope"/,
    );
  });

  it('knows the simulator upstream when it is the only one', () => {
    const config = configOf(
      'simulatorUrl: "http://127.0.0.1:9/v1"\npricing: { models: [{ model: "*", upstream: simulator, input: 1, output: 2 }] }',
    );
    expect(new PriceBook(config.pricing).price('x', 'simulator')).toEqual({
      input: 1,
      output: 2,
      batchDiscount: 0.5,
    });
  });
});

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
  const routing = configOf('routing: { models: [{ model: "gpt-*", strategy: cheapest }] }').routing;
  const router = new Router(upstreams, { prices, strategyOf: strategies(routing) });
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
