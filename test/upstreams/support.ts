import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { buildConfig, type BargeConfig } from '../../src/config/config';
import { HttpUpstreamGateway, type GatewayOptions } from '../../src/upstreams/gateway';
import type { UpstreamCall, UpstreamResult } from '../../src/upstreams/upstream-gateway';

/** Upstream names of this run: unique, so leftover rows of the shared limit tables never interfere. */
export const RUN = `ut-${randomBytes(3).toString('hex')}`;
let names = 0;
export const uniqueName = (label: string): string => `${RUN}-${label}-${++names}`;

/** Retries fast enough for tests; everything else as configured. */
export const FAST_ROUTING = {
  backoffBaseMs: 20,
  backoffMaxMs: 200,
  breakerThreshold: 3,
  breakerCooldownMs: 60_000,
  leaseRefreshMs: 200,
};

/**
 * A configuration as production builds it: the test stack's environment (Postgres) plus a
 * YAML file with the upstreams and routing, through buildConfig and its schema defaults.
 */
export function configWith(yaml: {
  upstreams?: unknown[];
  routing?: object;
  simulatorUrl?: string;
}): BargeConfig {
  const file = join(mkdtempSync(join(tmpdir(), 'barge-upstreams-')), 'barge.yaml');
  // JSON is YAML.
  writeFileSync(file, JSON.stringify({ ...yaml, routing: { ...FAST_ROUTING, ...yaml.routing } }));
  const env: NodeJS.ProcessEnv = { ...process.env, BARGE_CONFIG: file };
  delete env.BARGE_SIMULATOR_URL;
  return buildConfig(env);
}

export function chat(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra };
}

let requests = 0;

export function callOf(overrides: Partial<UpstreamCall> = {}): UpstreamCall {
  const n = ++requests;
  return {
    requestId: `${RUN}-batch:${n}`,
    batchId: `${RUN}-batch`,
    tenantId: 'tenant-a',
    endpoint: '/v1/chat/completions',
    body: chat(`request ${n}`),
    provider: null,
    deadline: Date.now() + 60_000,
    attemptsSoFar: 0,
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** Gateways built by a test file, closed together after it. */
export class Gateways {
  private readonly open: HttpUpstreamGateway[] = [];

  constructor(private readonly db: () => DataSource) {}

  make(config: BargeConfig, options: Omit<GatewayOptions, 'limitStore'> = {}): HttpUpstreamGateway {
    const gateway = HttpUpstreamGateway.forDatabase(config, this.db(), options);
    this.open.push(gateway);
    return gateway;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((g) => g.close()));
  }
}

export function httpResult(result: UpstreamResult): Extract<UpstreamResult, { kind: 'http' }> {
  if (result.kind !== 'http') throw new Error(`expected an HTTP result, got ${JSON.stringify(result)}`);
  return result;
}

/** The `model` field of an answer body (the simulator echoes the model it was asked for). */
export const answeredModel = (result: UpstreamResult): unknown =>
  (httpResult(result).body as { model?: unknown }).model;

/** Removes this run's rows from the shared limit tables. */
export async function cleanLimitTables(db: DataSource): Promise<void> {
  await db.query(`DELETE FROM upstream_rate_buckets WHERE scope LIKE $1`, [`${RUN}-%`]);
  await db.query(`DELETE FROM upstream_concurrency_leases WHERE scope LIKE $1`, [`${RUN}-%`]);
}
