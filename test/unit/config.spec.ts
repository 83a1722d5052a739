import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, windowToMs, type BargeConfig } from '../../src/config/config';
import { PriceBook } from '../../src/upstreams/prices';

const required = {
  BARGE_POSTGRES_URL: 'postgres://u:p@db:5432/barge',
  BARGE_STORAGE_ENDPOINT: 'http://minio:9000',
  BARGE_STORAGE_ACCESS_KEY: 'ak',
  BARGE_STORAGE_SECRET_KEY: 'sk',
  BARGE_STORAGE_BUCKET: 'barge',
};

function yamlFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'barge-config-')), 'barge.yaml');
  writeFileSync(file, text);
  return file;
}

describe('buildConfig', () => {
  it('applies defaults for everything optional', () => {
    const config = buildConfig(required);
    expect(config.api).toEqual({
      host: '127.0.0.1',
      port: 8000,
      headersTimeoutMs: 30_000,
      bodyTimeoutMs: 60_000,
      streamIdleTimeoutMs: 300_000,
      maxConcurrentUploadsPerTenant: 8,
    });
    expect(config.temporal.taskQueue).toBe('barge-batches');
    expect(config.limits.maxFileBytes).toBe(512 * 1024 * 1024);
    expect(config.limits.maxBatchFileBytes).toBe(200 * 1024 * 1024);
    expect(config.limits.maxRequestsPerBatch).toBe(50_000);
    expect(config.batches.completionWindows).toEqual(['24h', '48h']);
  });

  it('names every missing or bad setting with its environment variable', () => {
    let error: unknown;
    try {
      buildConfig({
        ...required,
        BARGE_POSTGRES_URL: 'mysql://x',
        BARGE_API_PORT: '99999',
        BARGE_STORAGE_BUCKET: '',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('BARGE_POSTGRES_URL');
    expect(message).toContain('BARGE_API_PORT');
    expect(message).toContain('storage.bucket');
  });

  it('fails when a required setting is missing', () => {
    const { BARGE_STORAGE_SECRET_KEY: _omitted, ...rest } = required;
    expect(() => buildConfig(rest)).toThrow(/storage\.secretKey/);
  });

  it('reads the YAML file and lets environment variables override it', () => {
    const file = yamlFile(`
api: { port: 9100 }
batches: { completionWindows: [24h] }
upstreams:
  - name: openai
    baseUrl: https://api.openai.com/v1
    apiKeyEnv: OPENAI_API_KEY
    models: ["gpt-4o*"]
`);
    const config = buildConfig({ ...required, BARGE_CONFIG: file, BARGE_API_PORT: '9200' });
    expect(config.api.port).toBe(9200);
    expect(config.batches.completionWindows).toEqual(['24h']);
    expect(config.upstreams[0]).toMatchObject({ name: 'openai', models: ['gpt-4o*'], timeoutMs: 600_000 });
  });

  it('splits list variables', () => {
    expect(
      buildConfig({ ...required, BARGE_COMPLETION_WINDOWS: '24h, 1h' }).batches.completionWindows,
    ).toEqual(['24h', '1h']);
  });

  it('rejects an unreadable or malformed file, naming it', () => {
    expect(() => buildConfig({ ...required, BARGE_CONFIG: '/nonexistent/barge.yaml' })).toThrow(
      /BARGE_CONFIG: cannot read \/nonexistent\/barge.yaml/,
    );
    expect(() => buildConfig({ ...required, BARGE_CONFIG: yamlFile('api: [unclosed') })).toThrow(
      /not valid YAML/,
    );
  });

  it('rejects duplicate upstream names', () => {
    const file = yamlFile(`
upstreams:
  - { name: a, baseUrl: "http://127.0.0.1:1/v1" }
  - { name: a, baseUrl: "http://127.0.0.1:2/v1" }
`);
    expect(() => buildConfig({ ...required, BARGE_CONFIG: file })).toThrow(/duplicate name "a"/);
  });
});

describe('windowToMs', () => {
  it('converts completion windows', () => {
    expect(windowToMs('24h')).toBe(86_400_000);
    expect(windowToMs('20s')).toBe(20_000);
    expect(windowToMs('1h')).toBe(3_600_000);
    expect(windowToMs('72h')).toBe(72 * 3_600_000);
    expect(windowToMs('7d')).toBe(7 * 86_400_000);
    expect(() => windowToMs('soon')).toThrow();
    expect(() => windowToMs('0h')).toThrow();
    expect(() => windowToMs('1.5h')).toThrow();
  });
});

describe('completion windows and webhook settings', () => {
  it('accepts any Nh/Nd window and defaults a batch to 24h', () => {
    const config = buildConfig({ ...required, BARGE_COMPLETION_WINDOWS: '1h,24h,48h,72h,7d' });
    expect(config.batches.completionWindows).toEqual(['1h', '24h', '48h', '72h', '7d']);
    expect(config.batches.defaultCompletionWindow).toBe('24h');
    expect(
      buildConfig({ ...required, BARGE_COMPLETION_WINDOWS: '48h', BARGE_DEFAULT_COMPLETION_WINDOW: '48h' })
        .batches.defaultCompletionWindow,
    ).toBe('48h');
  });

  it.each([
    [{ BARGE_COMPLETION_WINDOWS: '24h,0h' }, /batches.completionWindows.1 \(BARGE_COMPLETION_WINDOWS\)/],
    [{ BARGE_COMPLETION_WINDOWS: '24h,1w' }, /BARGE_COMPLETION_WINDOWS/],
    [
      { BARGE_DEFAULT_COMPLETION_WINDOW: '72h' },
      /"72h" is not one of batches.completionWindows \(24h, 48h\)/,
    ],
    [{ BARGE_SECRETS_ENCRYPTION_KEY: 'c2hvcnQ=' }, /secrets.encryptionKey.*32 bytes, base64/],
    [{ BARGE_WEBHOOK_ALLOW_HTTP: 'yes' }, /BARGE_WEBHOOK_ALLOW_HTTP/],
    [{ BARGE_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8,localhost' }, /webhooks.allowedNetworks.1/],
  ])('refuses %j', (env, message) => {
    expect(() => buildConfig({ ...required, ...env })).toThrow(message);
  });

  it('reads the webhook settings, with safe defaults', () => {
    const defaults = buildConfig(required);
    expect(defaults.secrets.encryptionKey).toBeUndefined();
    expect(defaults.webhooks).toMatchObject({
      allowedNetworks: [],
      allowedHosts: [],
      allowHttp: false,
      giveUpAfterMs: 24 * 3600_000,
    });
    const key = Buffer.alloc(32, 7).toString('base64');
    const config = buildConfig({
      ...required,
      BARGE_SECRETS_ENCRYPTION_KEY: key,
      BARGE_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8, ::1/128',
      BARGE_WEBHOOK_ALLOW_HTTP: 'true',
      BARGE_WEBHOOK_GIVE_UP_AFTER_MS: '30000',
    });
    expect(config.secrets.encryptionKey).toBe(key);
    expect(config.webhooks).toMatchObject({
      allowedNetworks: ['127.0.0.0/8', '::1/128'],
      allowHttp: true,
      giveUpAfterMs: 30_000,
    });
    expect(buildConfig({ ...required, BARGE_WEBHOOK_ALLOW_HTTP: '0' }).webhooks.allowHttp).toBe(false);
  });
});

function configOf(yaml: string, env: NodeJS.ProcessEnv = {}): BargeConfig {
  return buildConfig({ ...required, ...env, BARGE_CONFIG: yamlFile(yaml) });
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
