/**
 * Barge as the system under test, through its public surface only: its configuration file
 * (BARGE_CONFIG), its processes (dist/src/main.js and dist/src/worker.js), the `barge keys`
 * CLI, and the OpenAI API driven by the official SDK.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { stringify as toYaml } from 'yaml';
import { buildConfig, type BargeConfig } from '../src/config/config';
import { freePort, startNode, type Started } from './processes';
import type { BargeSettings } from './scenarios';
import type { Workload } from './workload';

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
/**
 * Polls every 2% of the time elapsed, within 100 ms..1 s: the end is seen within 2% of the
 * run, and a long run's polls do not add much to the API's CPU it is charged with.
 */
const pollDelay = (elapsedMs: number): number => Math.min(1000, Math.max(100, elapsedMs * 0.02));

/** The environment Barge's processes get: ours without any BARGE_* or SIM_* but the infrastructure's. */
export function bargeEnv(configPath?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    const infra = /^BARGE_(POSTGRES_|STORAGE_|TEMPORAL_ADDRESS$|TEMPORAL_NAMESPACE$)/.test(name);
    if (infra || !/^(BARGE|SIM)_/.test(name)) env[name] = value;
  }
  if (configPath) env.BARGE_CONFIG = configPath;
  return env;
}

/** Creates an API key with the `barge keys` CLI; the key is the last line of its stdout. */
export function createApiKey(root: string, tenant: string): string {
  const out = execFileSync(
    process.execPath,
    [join(root, 'bin', 'barge.js'), 'keys', 'create', '--tenant', tenant],
    {
      env: bargeEnv(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const key = out.trim().split('\n').pop();
  if (!key) throw new Error('barge keys create printed no key');
  return key;
}

type Json = Record<string, unknown>;
const isPlainObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key] as Json, value) : value;
  }
  return out;
}

function leafPaths(value: Json, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, v]) =>
    isPlainObject(v) && Object.keys(v).length > 0 ? leafPaths(v, `${prefix}${key}.`) : [`${prefix}${key}`],
  );
}

function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (isPlainObject(node) ? node[key] : undefined), value);
}

export interface BargeInstanceOptions {
  root: string;
  /** Unique per instance: names its task queues, config file and logs. */
  name: string;
  workDir: string;
  simulatorBaseUrl: string;
  settings: BargeSettings;
  maxRequestsPerBatch: number;
  /** Worker processes, all on the same task queues and limits (BENCH_WORKERS). */
  workers: number;
}

/**
 * Writes the configuration file and validates it with Barge's own schema. A setting the
 * schema dropped (zod strips unknown keys) would silently measure the default, so it is an error.
 */
export async function writeConfig(
  options: BargeInstanceOptions,
): Promise<{ path: string; port: number; config: BargeConfig }> {
  const port = await freePort();
  const base: Json = {
    api: { host: '127.0.0.1', port },
    temporal: {
      // Fresh queues per instance: leftovers of an interrupted bench are never picked up.
      taskQueue: `${options.name}`,
      upstreamTaskQueue: `${options.name}-upstream`,
      shutdownGraceSeconds: 5,
    },
    limits: {
      maxRequestsPerBatch: Math.max(options.maxRequestsPerBatch, 50_000),
      maxBatchFileBytes: 2 * 1024 ** 3,
      maxFileBytes: 2 * 1024 ** 3,
    },
    // Metrics exported as in production, on a port of their own so a bench runs beside `npm run up`.
    worker: { metricsPort: await freePort() },
    // As in production (the default): a line per chunk and per batch step, none per request.
    logLevel: 'info',
    upstreams: [
      {
        name: 'simulator',
        baseUrl: options.simulatorBaseUrl,
        models: ['*'],
        limits: options.settings.upstreamLimits,
      },
    ],
  };
  const raw = deepMerge(base, options.settings.config);
  const path = join(options.workDir, `${options.name}.yaml`);
  writeFileSync(path, toYaml(raw));
  const config = buildConfig(bargeEnv(path));
  const missing = [
    ...leafPaths(options.settings.config).filter((p) => at(config, p) === undefined),
    ...leafPaths(options.settings.upstreamLimits)
      .filter((p) => at(config.upstreams[0]?.limits, p) === undefined)
      .map((p) => `upstreams[0].limits.${p}`),
  ];
  if (missing.length > 0) {
    throw new Error(
      `bench settings ${missing.join(', ')} are not in Barge's configuration schema (src/config/config.ts) ` +
        'any more: update BARGE_SETTINGS in bench/scenarios.ts',
    );
  }
  return { path, port, config };
}

export interface BargeInstance {
  api: Started;
  workers: Started[];
  client: OpenAI;
  config: BargeConfig;
  configPath: string;
  stop(): Promise<void>;
}

/** The worker's default Node options: its heap cap (docs/operations.md, worker memory). */
export const WORKER_NODE_OPTIONS = '--max-old-space-size=384 --max-semi-space-size=32';

export async function startBarge(options: BargeInstanceOptions, apiKey: string): Promise<BargeInstance> {
  const { path, port, config } = await writeConfig(options);
  const env = bargeEnv(path);
  const log = (what: string): string => join(options.workDir, `${options.name}-${what}.log`);
  // BENCH_CPU_PROF=DIR: V8 CPU profiles of the worker and the API (written when they stop).
  const profile = (what: string): string[] =>
    process.env.BENCH_CPU_PROF
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`,
          `--cpu-prof-name=${options.name}-${what}.cpuprofile`,
        ]
      : [];
  // As scripts/stack.sh and docker-compose.yml run it: the heap cap unless told otherwise.
  const workerNodeOptions =
    options.settings.workerNodeOptions ?? process.env.BARGE_WORKER_NODE_OPTIONS ?? WORKER_NODE_OPTIONS;
  const workers: Started[] = [];
  for (let i = 1; i <= options.workers; i++) {
    const what = i === 1 ? 'worker' : `worker-${i}`;
    // Each its own metrics port; the first keeps the one in the generated config.
    const metricsPort = i === 1 ? {} : { BARGE_WORKER_METRICS_PORT: String(await freePort()) };
    const workerEnv = { ...env, ...metricsPort, NODE_OPTIONS: workerNodeOptions };
    workers.push(
      startNode(join(options.root, 'dist', 'src', 'worker.js'), [], workerEnv, log(what), profile(what)),
    );
  }
  const api = startNode(join(options.root, 'dist', 'src', 'main.js'), [], env, log('api'), profile('api'));
  const stop = async (): Promise<void> => {
    await Promise.all([api.stop(15_000), ...workers.map((w) => w.stop(30_000))]);
  };
  try {
    await Promise.all(workers.map((w) => w.waitFor(/barge-worker: polling/, 120_000)));
    const baseURL = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    while (!(await fetch(`${baseURL}/readyz`).catch(() => undefined))?.ok) {
      if (Date.now() > deadline || api.child.exitCode !== null)
        throw new Error(`the API did not become ready; see ${log('api')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // No SDK retries: a failing call must show, not be hidden in the timings.
    const client = new OpenAI({ apiKey, baseURL: `${baseURL}/v1`, maxRetries: 0, timeout: 600_000 });
    return { api, workers, client, config, configPath: path, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface BatchRun {
  batchId: string;
  status: string;
  timedOut: boolean;
  uploadSeconds: number;
  /** From just before batches.create to the first poll that saw a terminal status. */
  createToTerminalSeconds: number;
  downloadSeconds: number;
  /**
   * From the first poll that saw `finalizing` to the first that saw a terminal status (so
   * within a poll interval); null when no poll saw `finalizing`.
   */
  finalizeSeconds: number | null;
  /** Upload start to the last byte of both files. */
  endToEndSeconds: number;
  requestCounts: Batch['request_counts'] | null;
  /** batches.retrieve calls while waiting (their cost is in the API's CPU). */
  polls: number;
  /** Seconds from created_at to each later timestamp the batch reports (1 s resolution). */
  phases: Record<string, number>;
  output: string;
  errors: string;
}

async function download(client: OpenAI, fileId: string | null | undefined): Promise<string> {
  if (!fileId) return '';
  const response = await client.files.content(fileId);
  return await response.text();
}

/**
 * Uploads the lines, runs them as one batch to a terminal state (cancelling at the deadline),
 * downloads both files. Fails at once if one of `processes` (Barge's API and worker) exits.
 */
export async function runBatch(
  client: OpenAI,
  { jsonl, endpoint }: Pick<Workload, 'jsonl' | 'endpoint'>,
  name: string,
  timeoutMs: number,
  processes: Started[] = [],
): Promise<BatchRun> {
  const t0 = performance.now();
  const file = await client.files.create({ file: await toFile(jsonl, `${name}.jsonl`), purpose: 'batch' });
  const tUploaded = performance.now();
  let batch = await client.batches.create({
    input_file_id: file.id,
    endpoint,
    completion_window: '24h',
  });
  let timedOut = false;
  const deadline = tUploaded + timeoutMs;
  let cancelDeadline = Infinity;
  let polls = 0;
  let tFinalizing: number | undefined;
  while (!TERMINAL.has(batch.status)) {
    await new Promise((resolve) => setTimeout(resolve, pollDelay(performance.now() - tUploaded)));
    const gone = processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (gone) {
      const how = gone.child.signalCode ?? `code ${gone.child.exitCode}`;
      throw new Error(`${gone.child.spawnargs.slice(1).join(' ')} exited (${how}) during batch ${batch.id}`);
    }
    batch = await client.batches.retrieve(batch.id);
    polls++;
    const now = performance.now();
    if (batch.status === 'finalizing') tFinalizing ??= now;
    if (!timedOut && now > deadline && !TERMINAL.has(batch.status)) {
      timedOut = true;
      cancelDeadline = now + 120_000;
      await client.batches.cancel(batch.id).catch(() => undefined);
    }
    if (now > cancelDeadline) break;
  }
  const tTerminal = performance.now();
  const [output, errors] = await Promise.all([
    download(client, batch.output_file_id),
    download(client, batch.error_file_id),
  ]);
  const tDownloaded = performance.now();

  const phases: Record<string, number> = {};
  for (const key of [
    'in_progress_at',
    'finalizing_at',
    'completed_at',
    'failed_at',
    'cancelled_at',
    'expired_at',
  ] as const) {
    const at = batch[key];
    if (typeof at === 'number') phases[key.replace(/_at$/, '')] = at - batch.created_at;
  }
  return {
    batchId: batch.id,
    status: batch.status,
    timedOut,
    uploadSeconds: (tUploaded - t0) / 1000,
    createToTerminalSeconds: (tTerminal - tUploaded) / 1000,
    downloadSeconds: (tDownloaded - tTerminal) / 1000,
    finalizeSeconds: tFinalizing === undefined ? null : (tTerminal - tFinalizing) / 1000,
    endToEndSeconds: (tDownloaded - t0) / 1000,
    requestCounts: batch.request_counts ?? null,
    polls,
    phases,
    output,
    errors,
  };
}
