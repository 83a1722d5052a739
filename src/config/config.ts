import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { providerNames } from '../upstreams/provider-names';

/**
 * Barge's whole configuration: one typed object, built once at process start from an
 * optional YAML file (path in BARGE_CONFIG) overlaid by environment variables.
 * Nothing else in the code base reads process.env; everything receives this object.
 */

const MB = 1024 * 1024;

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const nonEmpty = z.string().min(1);
/** true/false, also as the text an environment variable carries ("true", "false", "1", "0"). */
const flag = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
/** A completion window: a positive whole number of seconds, minutes, hours or days ("24h", "7d"). */
const completionWindow = z.string().regex(/^[1-9]\d{0,5}[smhd]$/, 'a window such as "24h", "48h" or "7d"');
/** A key for AES-256: 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`). */
const encryptionKey = z
  .string()
  .refine((v) => /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === 32, {
    message: 'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
  });
/** An IPv4 or IPv6 network in CIDR notation ("127.0.0.0/8", "::1/128"), or a single address. */
const network = z.string().regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/, 'a network such as 10.1.0.0/16 or ::1/128');

const modelLimitsSchema = z.object({
  maxConcurrency: positiveInt.optional(),
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
});

const upstreamSchema = z.object({
  /** Name used in routing, the provider header and logs. */
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
  /** Base URL including the version prefix, e.g. https://api.openai.com/v1 */
  baseUrl: z.url(),
  /** Name of the environment variable holding the API key; never the key itself. */
  apiKeyEnv: z.string().optional(),
  /** Path of a file holding the API key (Docker/Kubernetes secrets). */
  apiKeyFile: z.string().optional(),
  headers: z.record(z.string(), z.string()).default({}),
  timeoutMs: positiveInt.default(600_000),
  /** Exact model names or wildcards ("gpt-4o*", "*") served by this upstream. */
  models: z.array(nonEmpty).default(['*']),
  /** Public model name -> the upstream's own model name. */
  aliases: z.record(z.string(), z.string()).default({}),
  /** Lower runs first among upstreams serving the same model (fallback order). */
  priority: z.coerce.number().int().default(100),
  limits: z
    .object({
      maxConcurrency: positiveInt.default(64),
      requestsPerMinute: positiveInt.optional(),
      tokensPerMinute: positiveInt.optional(),
      /** Tighter limits for single models, keyed by the upstream's own model name (after aliases). */
      models: z.record(z.string(), modelLimitsSchema).default({}),
    })
    .prefault({}),
});

export type UpstreamConfig = z.infer<typeof upstreamSchema>;

/** A share of a list price taken off, from 0 (none) to 1 (free). */
const discount = z.coerce.number().min(0).max(1);
/** US dollars per million tokens. */
const usdPerMillion = z.coerce.number().min(0).max(1_000_000);

const modelPriceSchema = z.object({
  /** An exact model name or a wildcard ("gpt-4o*"), matched against the batch's (public) model name. */
  model: nonEmpty,
  /** Only on this upstream; without it, on every upstream that has no entry of its own for the model. */
  upstream: nonEmpty.optional(),
  /** USD per 1M input tokens (cached ones included), at list price. */
  input: usdPerMillion,
  /** USD per 1M output tokens (reasoning ones included), at list price. */
  output: usdPerMillion,
  /** Taken off the list price for batch traffic (0.5: half price); pricing.batchDiscount by default. */
  batchDiscount: discount.optional(),
});

export type ModelPriceConfig = z.infer<typeof modelPriceSchema>;

const routingStrategy = z.enum(['priority', 'cheapest']);
export type RoutingStrategy = z.infer<typeof routingStrategy>;

const configSchema = z.object({
  api: z
    .object({
      host: nonEmpty.default('127.0.0.1'),
      port: port.default(8000),
      /** A client must send its request headers within this (408 otherwise). */
      headersTimeoutMs: positiveInt.default(30_000),
      /** ...and a request body within this, on every route but streamed uploads (408 otherwise). */
      bodyTimeoutMs: positiveInt.default(60_000),
      /** Streamed uploads and downloads are cut after this long without a byte moving. */
      streamIdleTimeoutMs: positiveInt.default(300_000),
      /** File uploads one tenant may have in flight at once, per API process (429 beyond). */
      maxConcurrentUploadsPerTenant: positiveInt.default(8),
      /** When set, GET /metrics wants `Authorization: Bearer <this>`; unset, it is open. */
      metricsToken: z.string().min(16, 'at least 16 characters').optional(),
    })
    .prefault({}),
  postgres: z.object({
    url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    poolSize: positiveInt.default(10),
  }),
  temporal: z
    .object({
      address: nonEmpty.default('127.0.0.1:7233'),
      namespace: nonEmpty.default('default'),
      /** Queue for workflow tasks and bookkeeping activities. */
      taskQueue: nonEmpty.default('barge-batches'),
      /** Queue for the activities that call upstream models. */
      upstreamTaskQueue: nonEmpty.default('barge-upstream'),
      /** Queue for webhook deliveries (their workflows and the activities that call receivers). */
      webhookTaskQueue: nonEmpty.default('barge-webhooks'),
      /** Seconds the worker waits for in-flight activities on SIGTERM. */
      shutdownGraceSeconds: positiveInt.default(30),
    })
    .prefault({}),
  storage: z.object({
    endpoint: z.url(),
    accessKey: nonEmpty,
    secretKey: nonEmpty,
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'),
    region: nonEmpty.default('us-east-1'),
  }),
  limits: z
    .object({
      maxFileBytes: positiveInt.default(512 * MB),
      maxBatchFileBytes: positiveInt.default(200 * MB),
      maxRequestsPerBatch: positiveInt.default(50_000),
      /** Default lifetime of uploaded batch input files (OpenAI: 30 days). */
      batchFileTtlSeconds: positiveInt.default(30 * 24 * 3600),
    })
    .prefault({}),
  /**
   * Default quotas of every tenant (src/tenants/quotas.ts); unset: no limit. `barge tenants set`
   * overrides them per tenant.
   */
  quotas: z
    .object({
      /** Batches not yet ended (validating, in_progress, finalizing, cancelling); 429 on create beyond. */
      maxActiveBatches: nonNegativeInt.optional(),
      /** Bytes of the tenant's stored files (uploads and batch output alike); 429 on upload beyond. */
      maxStorageBytes: nonNegativeInt.optional(),
      /** Estimated tokens of running batches, per model; a batch beyond fails `token_limit_exceeded`. */
      maxEnqueuedTokens: nonNegativeInt.optional(),
    })
    .prefault({}),
  batches: z
    .object({
      /** Windows a batch may ask for; any whole number of hours or days ("1h", "72h", "7d"). */
      completionWindows: z.array(completionWindow).min(1).default(['24h', '48h']),
      /** The window of a batch created without `completion_window`; must be one of completionWindows. */
      defaultCompletionWindow: completionWindow.default('24h'),
      /**
       * At most this many requests per chunk activity... Each chunk costs Temporal a handful of
       * history events and the worker an activity, so small chunks cost throughput at short
       * latencies; 600 against 200 (BENCH_SCALE=0.5 npm run bench -- b c e): b 1.79x against
       * 1.99x direct, c 0.86x against 1.04x, e's faults 1.44x against 1.53x clean.
       */
      chunkSize: positiveInt.default(600),
      /** ...and at most this many bytes of input (a chunk's requests are in memory while it runs). */
      chunkMaxBytes: positiveInt.default(4 * MB),
      /**
       * Chunk activities in flight per batch, at least. A batch whose upstreams take more in
       * flight gets a wider window (about twice their capacity in requests), up to maxChunkWindow.
       * A chunk holds its window slot until its last retry ends, so the window must also hold
       * what the upstream serves meanwhile: with 20% of requests retried (bench e), a window
       * of 8 left the upstream a fifth idle (faulty 1.71x/1.76x clean), 16 gave 1.48x, 24
       * 1.39x/1.46x (BENCH_SCALE=0.5 npm run bench -- e, 2026-12-02).
       */
      chunkWindow: positiveInt.default(16),
      maxChunkWindow: positiveInt.max(1000).default(64),
      /** A chunk's claim lapses this long after its last renewal (a crashed attempt's chunk is free again). */
      chunkClaimTtlMs: positiveInt.default(15_000),
      /** How long a chunk keeps trying to record answers while Postgres refuses them, before it fails. */
      recordGiveUpMs: positiveInt.default(120_000),
    })
    .prefault({}),
  worker: z
    .object({
      /** Chunk activities one worker runs at once (each holds its chunk in memory). */
      maxConcurrentChunks: positiveInt.default(200),
      /**
       * Memory the chunks one worker holds at once may take (every batch's chunks share it; a
       * chunk waits for room before it reads its requests). A chunk is charged 4 bytes per
       * byte of its input (MEMORY_PER_INPUT_BYTE in activities/dispatch.activity.ts). See
       * docs/operations.md.
       */
      maxChunkBytesInMemory: positiveInt.default(96 * MB),
      /**
       * Memory the answers one worker holds at once may take: an answer is read from its
       * socket only once there is room (3 bytes per byte of its content-length while read),
       * and its output line is charged (3 bytes per byte) until it is recorded; finalize's
       * pages of output lines take from it too. Calls in flight beyond it wait with their
       * answers unread. See docs/operations.md.
       */
      maxAnswerBytesInMemory: positiveInt.default(64 * MB),
      /** Validation and finalize activities one worker runs at once. */
      maxConcurrentBookkeeping: positiveInt.default(20),
      /** How often the worker looks for batches whose workflow is gone (the reconciler). */
      reconcileIntervalMs: positiveInt.default(60_000),
      /** A batch this young is left alone by the reconciler (its workflow may be starting). */
      reconcileGraceMs: positiveInt.default(120_000),
      /** The worker's metrics-only HTTP port (GET /metrics, Temporal's runtime metrics included); 0: none. */
      metricsPort: port.default(9464),
      /** Where it listens: loopback by default; 0.0.0.0 in a container Prometheus scrapes from outside. */
      metricsHost: nonEmpty.default('127.0.0.1'),
      /** Webhook deliveries (HTTP calls to tenants' receivers) one worker makes at once. */
      maxConcurrentWebhookDeliveries: positiveInt.default(50),
    })
    .prefault({}),
  /** Secrets Barge keeps for tenants (webhook signing secrets), encrypted at rest (src/common/secret-box.ts). */
  secrets: z
    .object({
      /** The AES-256-GCM key new secrets are encrypted with. Required for webhooks. */
      encryptionKey: encryptionKey.optional(),
      /** Keys secrets stored earlier may be encrypted with (key rotation): decrypt only. */
      previousEncryptionKeys: z.array(encryptionKey).default([]),
    })
    .prefault({}),
  /** Webhooks to tenants' receivers (src/webhooks/). */
  webhooks: z
    .object({
      /**
       * Networks a receiver may be in although they are loopback, private, link-local or
       * otherwise not public (all of which are refused by default), e.g. ["127.0.0.0/8", "::1/128"].
       */
      allowedNetworks: z.array(network).default([]),
      /** When set, receivers must be on one of these hosts ("hooks.example.com", "*.example.com"). */
      allowedHosts: z.array(nonEmpty).default([]),
      /** Allow plain http:// receivers (default: https only). */
      allowHttp: flag.default(false),
      /** One delivery attempt (connect, send, answer) is given up after this long. */
      timeoutMs: positiveInt.default(10_000),
      /** First retry after about this long, then doubling (with jitter)... */
      retryInitialDelayMs: positiveInt.default(10_000),
      /** ...up to this long between attempts... */
      retryMaxDelayMs: positiveInt.default(2 * 3600_000),
      /** ...until this long after the first attempt: then the event is given up for that receiver. */
      giveUpAfterMs: positiveInt.default(24 * 3600_000),
      /** How often a worker looks for ended batches whose events have no delivery running yet. */
      relayIntervalMs: positiveInt.default(1_000),
      /** Webhook endpoints one tenant may have. */
      maxEndpointsPerTenant: positiveInt.default(20),
    })
    .prefault({}),
  upstreams: z.array(upstreamSchema).default([]),
  /** How the upstream gateway retries, fails over and shares limits (src/upstreams/). */
  routing: z
    .object({
      /** Attempts per request in all, counting those made before a worker restart. */
      maxAttempts: positiveInt.default(8),
      /** Backoff before retry n is random(0, min(backoffMaxMs, backoffBaseMs * 2^(n-1))). */
      backoffBaseMs: positiveInt.default(500),
      backoffMaxMs: positiveInt.default(60_000),
      /** Longer Retry-After values are cut to this. */
      retryAfterMaxMs: positiveInt.default(300_000),
      /**
       * An upstream's circuit opens when, of its last breakerWindow first attempts, at least
       * breakerThreshold failed (connection errors, timeouts, 5xx) and they are at least
       * breakerFailureRate of them. A shorter window opens on chance: at 12% failing, 10 of
       * the last 20 comes about 7 times in a million attempts (src/upstreams/circuit-breaker.ts).
       */
      breakerThreshold: positiveInt.default(10),
      breakerFailureRate: z.coerce.number().gt(0).max(1).default(0.5),
      breakerWindow: positiveInt.default(100),
      /** How long an open circuit sends nothing before one probe request is let through. */
      breakerCooldownMs: positiveInt.default(15_000),
      /** How often each worker renews and rebalances its share of the concurrency limits. */
      leaseRefreshMs: positiveInt.default(1_000),
      /**
       * The order upstreams serving a model are tried in: `priority` (their priority, then the
       * file's order) or `cheapest` (by the request's estimated cost at pricing's prices,
       * priority breaking ties, unpriced upstreams last). The circuit breakers and fallbacks
       * work the same either way.
       */
      strategy: routingStrategy.default('priority'),
      /** Per-model strategies, first match wins ("gpt-4o*": cheapest); others use `strategy`. */
      models: z.array(z.object({ model: nonEmpty, strategy: routingStrategy })).default([]),
    })
    .prefault({}),
  /** Prices of models per upstream (src/upstreams/prices.ts): usage cost, cost estimates, cheapest routing. */
  pricing: z
    .object({
      /** Taken off every list price for batch traffic unless an entry sets its own (OpenAI: 0.5). */
      batchDiscount: discount.default(0.5),
      /** Output tokens a cost estimate assumes for a request that sets no max_tokens (chat, completions, responses). */
      defaultMaxOutputTokens: positiveInt.default(4096),
      /** First match wins, entries naming the upstream before those that do not. */
      models: z.array(modelPriceSchema).default([]),
    })
    .prefault({}),
  /** When set and no upstream is configured, every model routes here (local runs, tests). */
  simulatorUrl: z.url().optional(),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type BargeConfig = z.infer<typeof configSchema>;

/** Environment variable -> path in the configuration object. */
export const ENV_VARS: Record<string, string> = {
  BARGE_API_HOST: 'api.host',
  BARGE_API_PORT: 'api.port',
  BARGE_API_HEADERS_TIMEOUT_MS: 'api.headersTimeoutMs',
  BARGE_API_BODY_TIMEOUT_MS: 'api.bodyTimeoutMs',
  BARGE_API_STREAM_IDLE_TIMEOUT_MS: 'api.streamIdleTimeoutMs',
  BARGE_MAX_CONCURRENT_UPLOADS_PER_TENANT: 'api.maxConcurrentUploadsPerTenant',
  BARGE_METRICS_TOKEN: 'api.metricsToken',
  BARGE_POSTGRES_URL: 'postgres.url',
  BARGE_POSTGRES_POOL_SIZE: 'postgres.poolSize',
  BARGE_TEMPORAL_ADDRESS: 'temporal.address',
  BARGE_TEMPORAL_NAMESPACE: 'temporal.namespace',
  BARGE_TEMPORAL_TASK_QUEUE: 'temporal.taskQueue',
  BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: 'temporal.upstreamTaskQueue',
  BARGE_TEMPORAL_WEBHOOK_TASK_QUEUE: 'temporal.webhookTaskQueue',
  BARGE_WORKER_SHUTDOWN_GRACE_SECONDS: 'temporal.shutdownGraceSeconds',
  BARGE_STORAGE_ENDPOINT: 'storage.endpoint',
  BARGE_STORAGE_ACCESS_KEY: 'storage.accessKey',
  BARGE_STORAGE_SECRET_KEY: 'storage.secretKey',
  BARGE_STORAGE_BUCKET: 'storage.bucket',
  BARGE_STORAGE_REGION: 'storage.region',
  BARGE_MAX_FILE_BYTES: 'limits.maxFileBytes',
  BARGE_MAX_BATCH_FILE_BYTES: 'limits.maxBatchFileBytes',
  BARGE_MAX_REQUESTS_PER_BATCH: 'limits.maxRequestsPerBatch',
  BARGE_BATCH_FILE_TTL_SECONDS: 'limits.batchFileTtlSeconds',
  BARGE_QUOTA_MAX_ACTIVE_BATCHES: 'quotas.maxActiveBatches',
  BARGE_QUOTA_MAX_STORAGE_BYTES: 'quotas.maxStorageBytes',
  BARGE_QUOTA_MAX_ENQUEUED_TOKENS: 'quotas.maxEnqueuedTokens',
  BARGE_COMPLETION_WINDOWS: 'batches.completionWindows',
  BARGE_DEFAULT_COMPLETION_WINDOW: 'batches.defaultCompletionWindow',
  BARGE_CHUNK_SIZE: 'batches.chunkSize',
  BARGE_CHUNK_MAX_BYTES: 'batches.chunkMaxBytes',
  BARGE_CHUNK_WINDOW: 'batches.chunkWindow',
  BARGE_MAX_CHUNK_WINDOW: 'batches.maxChunkWindow',
  BARGE_CHUNK_CLAIM_TTL_MS: 'batches.chunkClaimTtlMs',
  BARGE_RECORD_GIVE_UP_MS: 'batches.recordGiveUpMs',
  BARGE_WORKER_MAX_CONCURRENT_CHUNKS: 'worker.maxConcurrentChunks',
  BARGE_WORKER_MAX_CONCURRENT_BOOKKEEPING: 'worker.maxConcurrentBookkeeping',
  BARGE_WORKER_MAX_CHUNK_BYTES_IN_MEMORY: 'worker.maxChunkBytesInMemory',
  BARGE_WORKER_MAX_ANSWER_BYTES_IN_MEMORY: 'worker.maxAnswerBytesInMemory',
  BARGE_RECONCILE_INTERVAL_MS: 'worker.reconcileIntervalMs',
  BARGE_RECONCILE_GRACE_MS: 'worker.reconcileGraceMs',
  BARGE_WORKER_METRICS_PORT: 'worker.metricsPort',
  BARGE_WORKER_METRICS_HOST: 'worker.metricsHost',
  BARGE_WORKER_MAX_CONCURRENT_WEBHOOKS: 'worker.maxConcurrentWebhookDeliveries',
  BARGE_SECRETS_ENCRYPTION_KEY: 'secrets.encryptionKey',
  BARGE_SECRETS_PREVIOUS_ENCRYPTION_KEYS: 'secrets.previousEncryptionKeys',
  BARGE_WEBHOOK_ALLOWED_NETWORKS: 'webhooks.allowedNetworks',
  BARGE_WEBHOOK_ALLOWED_HOSTS: 'webhooks.allowedHosts',
  BARGE_WEBHOOK_ALLOW_HTTP: 'webhooks.allowHttp',
  BARGE_WEBHOOK_TIMEOUT_MS: 'webhooks.timeoutMs',
  BARGE_WEBHOOK_RETRY_INITIAL_DELAY_MS: 'webhooks.retryInitialDelayMs',
  BARGE_WEBHOOK_RETRY_MAX_DELAY_MS: 'webhooks.retryMaxDelayMs',
  BARGE_WEBHOOK_GIVE_UP_AFTER_MS: 'webhooks.giveUpAfterMs',
  BARGE_WEBHOOK_RELAY_INTERVAL_MS: 'webhooks.relayIntervalMs',
  BARGE_WEBHOOK_MAX_ENDPOINTS_PER_TENANT: 'webhooks.maxEndpointsPerTenant',
  BARGE_ROUTING_STRATEGY: 'routing.strategy',
  BARGE_PRICING_BATCH_DISCOUNT: 'pricing.batchDiscount',
  BARGE_PRICING_DEFAULT_MAX_OUTPUT_TOKENS: 'pricing.defaultMaxOutputTokens',
  BARGE_SIMULATOR_URL: 'simulatorUrl',
  BARGE_LOG_LEVEL: 'logLevel',
};

const LIST_VARS = new Set([
  'BARGE_COMPLETION_WINDOWS',
  'BARGE_SECRETS_PREVIOUS_ENCRYPTION_KEYS',
  'BARGE_WEBHOOK_ALLOWED_NETWORKS',
  'BARGE_WEBHOOK_ALLOWED_HOSTS',
]);

export class ConfigError extends Error {}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

/** Builds and validates the configuration. Throws ConfigError naming every bad setting. */
export function buildConfig(env: NodeJS.ProcessEnv = process.env): BargeConfig {
  let raw: Record<string, unknown> = {};
  const file = env.BARGE_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`BARGE_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      raw = (parseYaml(text) as Record<string, unknown>) ?? {};
    } catch (err) {
      throw new ConfigError(`BARGE_CONFIG: ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(`BARGE_CONFIG: ${file} must hold a mapping at the top level`);
    }
  }
  for (const [name, path] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, path, LIST_VARS.has(name) ? value.split(',').map((v) => v.trim()) : value);
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const byPath = Object.fromEntries(Object.entries(ENV_VARS).map(([k, v]) => [v, k]));
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.join('.');
      const envName = byPath[issue.path.slice(0, 2).join('.')];
      const where = envName ? `${path} (${envName})` : path;
      return `  - ${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  }
  const config = result.data;
  const { completionWindows, defaultCompletionWindow } = config.batches;
  if (!completionWindows.includes(defaultCompletionWindow)) {
    throw new ConfigError(
      `invalid configuration:\n  - batches.defaultCompletionWindow (BARGE_DEFAULT_COMPLETION_WINDOW): "${defaultCompletionWindow}" is not one of batches.completionWindows (${completionWindows.join(', ')})`,
    );
  }
  const names = new Set<string>();
  for (const upstream of config.upstreams) {
    if (names.has(upstream.name)) {
      throw new ConfigError(`invalid configuration:\n  - upstreams: duplicate name "${upstream.name}"`);
    }
    names.add(upstream.name);
  }
  const inEffect = new Set(providerNames(config));
  config.pricing.models.forEach((price, i) => {
    if (price.upstream !== undefined && !inEffect.has(price.upstream)) {
      throw new ConfigError(
        `invalid configuration:\n  - pricing.models.${i}.upstream: no upstream named "${price.upstream}" (configured: ${[...inEffect].join(', ') || 'none'})`,
      );
    }
  });
  return config;
}

let loaded: BargeConfig | undefined;

/** The process-wide configuration, loaded on first use. Entry points call this once at start. */
export function loadConfig(): BargeConfig {
  loaded ??= buildConfig();
  return loaded;
}

const WINDOW_UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Completion window ("24h", "7d") in milliseconds. */
export function windowToMs(window: string): number {
  const match = /^([1-9]\d*)([smhd])$/.exec(window);
  if (!match) throw new Error(`bad completion window ${window}`);
  return Number(match[1]) * WINDOW_UNIT_MS[match[2]];
}
