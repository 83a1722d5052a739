/**
 * `npm run bench [-- SCENARIO...]`: Barge against a direct client, side by side in one run,
 * on the same simulator (scenarios and Barge's settings in bench/scenarios.ts). Prints a
 * table and writes every figure to .barge/bench/results-<timestamp>.json.
 *
 *   npm run bench                 every scenario: sim a b c d e f m1 m2
 *   npm run bench -- b c          some of them (or BENCH_SCENARIOS="b,c")
 *   BENCH_SCALE=0.05              request counts x 0.05, for a quick iteration
 *   BENCH_TIMEOUT_S=900           a batch still running after this is cancelled (and reported)
 *   BENCH_WARMUP=1000             requests of a warm-up batch per Barge instance; 0 = none
 *   BENCH_CPU_PROF=DIR            write V8 CPU profiles of Barge's worker and API into DIR
 *   BENCH_WORKERS=1               Barge worker processes per run (sharing its queues and limits)
 *
 * scripts/bench.sh starts the local profile's Postgres, Temporal and MinIO and builds dist/;
 * this program starts its own simulator, API and worker per run, with their own config.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SecondStats, SimulatorStats } from '../src/simulator/server';
import { createApiKey, runBatch, startBarge, type BatchRun } from './barge';
import { runDirect, type DirectResult } from './direct';
import { sustained } from './figures';
import { peakRssMiB, pidFromFile, treeCpuSeconds } from './processes';
import {
  BARGE_SETTINGS,
  GOALS,
  SCENARIOS,
  SIMULATOR_BENCH,
  type BargeSettings,
  type Scenario,
  type ScenarioId,
} from './scenarios';
import { startSimulatorProcess, type SimulatorProcess } from './simulator-process';
import { describeSimulatorBench, runSimulatorBench, type SimulatorBenchResult } from './simulator.bench';
import { buildWorkload, checkFiles, type FileCheck, type Workload } from './workload';

const ROOT = join(__dirname, '..', '..');
const ALL: ScenarioId[] = ['sim', 'a', 'b', 'c', 'd', 'e', 'f', 'm1', 'm2'];
const MIN_REQUESTS = 100;

interface Options {
  scenarios: ScenarioId[];
  scale: number;
  timeoutSeconds: number;
  warmupRequests: number;
  workers: number;
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { scale: { type: 'string' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || values.list) {
    console.log('scenarios:');
    console.log(
      `  sim  the simulator alone (${SIMULATOR_BENCH.requests} requests, ${SIMULATOR_BENCH.concurrency} clients)`,
    );
    for (const s of SCENARIOS) console.log(`  ${s.id.padEnd(4)} ${s.requests} requests, ${s.title}`);
    console.log(
      '\nnpm run bench -- [SCENARIO...] [--scale F]; env BENCH_SCENARIOS, BENCH_SCALE, BENCH_TIMEOUT_S, BENCH_WARMUP, BENCH_WORKERS',
    );
    process.exit(0);
  }
  const named =
    positionals.length > 0 ? positionals : (env.BENCH_SCENARIOS ?? '').split(/[\s,]+/).filter(Boolean);
  const scenarios = named.length === 0 || named.includes('all') ? ALL : named;
  for (const id of scenarios) {
    if (!ALL.includes(id as ScenarioId))
      throw new Error(`unknown scenario "${id}" (one of ${ALL.join(', ')}, or all)`);
  }
  const number = (name: string, text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined || text === '') return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${text}"`);
    return n;
  };
  const scale = number('BENCH_SCALE', values.scale ?? env.BENCH_SCALE, 1, 1e-6);
  return {
    scenarios: ALL.filter((id) => scenarios.includes(id)),
    scale,
    timeoutSeconds: number('BENCH_TIMEOUT_S', env.BENCH_TIMEOUT_S, 900, 1),
    warmupRequests: Math.round(number('BENCH_WARMUP', env.BENCH_WARMUP, 1000, 0)),
    workers: Math.round(number('BENCH_WORKERS', env.BENCH_WORKERS, 1, 1)),
  };
}

// --- what is measured ----------------------------------------------------------------------

interface SimulatorSummary {
  requests: number;
  byStatus: Record<string, number>;
  rateLimited: SimulatorStats['rateLimited'];
  /** Share of the simulator's answers that were 429. */
  share429: number;
  peakInFlight: number;
  avgInFlight: number;
  sustainedInFlight: number | null;
  peakServing: number;
  sustainedServing: number | null;
  /** First request to last answer at the simulator. */
  activeSeconds: number;
  perSecond: SecondStats[];
}

function summarise(stats: SimulatorStats): SimulatorSummary {
  return {
    requests: stats.totalRequests,
    byStatus: stats.byStatus,
    rateLimited: stats.rateLimited,
    share429: stats.totalRequests > 0 ? (stats.byStatus['429'] ?? 0) / stats.totalRequests : 0,
    peakInFlight: stats.peakInFlight,
    avgInFlight: stats.avgInFlight,
    sustainedInFlight: sustained(stats.perSecond, 'inFlight'),
    peakServing: stats.peakServing,
    sustainedServing: sustained(stats.perSecond, 'serving'),
    activeSeconds: stats.activeMs / 1000,
    perSecond: stats.perSecond,
  };
}

interface DirectRun extends DirectResult {
  kind: 'direct';
  simulatorCpuSeconds: number;
  simulator: SimulatorSummary;
}

interface BargeRun extends Omit<BatchRun, 'output' | 'errors'> {
  kind: 'barge';
  requestsPerSecond: number;
  endToEndRequestsPerSecond: number;
  check: FileCheck;
  /** Sizes of the downloaded output and error files. */
  outputBytes: number;
  errorBytes: number;
  /** CPU seconds over upload start to download end, per process tree. */
  cpuSeconds: Record<string, number>;
  /** API + worker + Postgres CPU seconds per 1,000 requests. */
  cpuSecondsPer1000: number;
  peakRssMiB: { api: number | null; worker: number | null };
  warmupSeconds: number | null;
  simulator: SimulatorSummary;
  /** The configuration as Barge parsed it: its batch tunables and the upstream's limits. */
  effectiveConfig: { batches: unknown; routing: unknown; upstreamLimits: unknown };
  faultCounts: Record<string, number>;
}

interface Goal {
  goal: string;
  value: number | null;
  /** How value reads: a ratio ("x"), a share ("%"), a count, or yes/no ("check"). */
  unit: 'x' | '%' | 'req/s' | 'in flight' | 'MiB' | 'check';
  met: boolean | null;
  /** Set when the batch hit BENCH_TIMEOUT_S: value is then a lower bound. */
  timedOut?: boolean;
}

interface ScenarioResult {
  id: ScenarioId;
  title: string;
  requests?: number;
  concurrency?: number;
  latency?: Scenario['latency'];
  meanLatencyMs?: number;
  idealSeconds?: number | null;
  settings?: BargeSettings;
  runs: Record<string, DirectRun | BargeRun | SimulatorBenchResult>;
  ratios: Record<string, number | null>;
  goals: Goal[];
  error?: string;
}

// --- runs ----------------------------------------------------------------------------------

interface Context {
  options: Options;
  stamp: string;
  workDir: string;
  apiKey: string | undefined;
  pids: { postgres?: number; temporal?: number; minio?: number };
}

function infraPids(): Context['pids'] {
  const local = join(ROOT, '.barge', 'local');
  return {
    postgres: pidFromFile(join(local, 'postgres', 'postmaster.pid')),
    temporal: pidFromFile(join(local, 'run', 'temporal.pid')),
    minio: pidFromFile(join(local, 'run', 'minio.pid')),
  };
}

async function directRun(
  sim: SimulatorProcess,
  workload: Workload,
  concurrency: number,
  warmup: number,
): Promise<DirectRun> {
  const warmupBodies = buildWorkload('warmup', Math.min(warmup, workload.bodies.length), {
    kind: 'fixed',
    ms: 0,
  }).bodies;
  let cpu = 0;
  const result = await runDirect(sim.url, workload.bodies, concurrency, {
    bodies: warmupBodies,
    beforeMeasure: async () => {
      await sim.reset();
      cpu = treeCpuSeconds(sim.pid);
    },
  });
  const simulatorCpuSeconds = treeCpuSeconds(sim.pid) - cpu;
  return { kind: 'direct', ...result, simulatorCpuSeconds, simulator: summarise(await sim.stats()) };
}

async function bargeRun(
  ctx: Context,
  scenario: Scenario,
  sim: SimulatorProcess,
  workload: Workload,
  label: string,
): Promise<BargeRun> {
  const settings = BARGE_SETTINGS[scenario.id as Exclude<ScenarioId, 'sim'>];
  const name = `bench-${ctx.stamp}-${scenario.id}-${label}`;
  const requests = workload.customIds.length;
  const barge = await startBarge(
    {
      root: ROOT,
      name,
      workDir: ctx.workDir,
      simulatorBaseUrl: sim.baseUrl,
      settings,
      maxRequestsPerBatch: requests,
      workers: ctx.options.workers,
    },
    ctx.apiKey!,
  );
  try {
    const timeoutMs = ctx.options.timeoutSeconds * 1000;
    let warmupSeconds: number | null = null;
    // Against the congestion model a warm-up would already teach Barge's pacing the capacity.
    const warmup = Math.min(ctx.options.warmupRequests, requests);
    if (warmup > 0 && !scenario.congestion) {
      const started = performance.now();
      const lines = buildWorkload(`${name}-warmup`, warmup, { kind: 'fixed', ms: 0 });
      const run = await runBatch(barge.client, lines, `${name}-warmup`, timeoutMs, [
        barge.api,
        ...barge.workers,
      ]);
      if (run.status !== 'completed') throw new Error(`warm-up batch ended ${run.status}`);
      warmupSeconds = (performance.now() - started) / 1000;
    }
    await sim.reset();

    // "worker" is all worker processes together.
    const trees: Record<string, (number | undefined)[]> = {
      api: [barge.api.pid],
      worker: barge.workers.map((w) => w.pid),
      postgres: [ctx.pids.postgres],
      temporal: [ctx.pids.temporal],
      minio: [ctx.pids.minio],
      simulator: [sim.pid],
    };
    const cpuOf = (pids: (number | undefined)[]): number =>
      pids.reduce<number>((n, pid) => n + treeCpuSeconds(pid), 0);
    const cpuBefore = Object.fromEntries(Object.entries(trees).map(([k, pids]) => [k, cpuOf(pids)]));
    const run = await runBatch(barge.client, workload, name, timeoutMs, [barge.api, ...barge.workers]);
    const cpuSeconds = Object.fromEntries(
      Object.entries(trees).map(([k, pids]) => [k, cpuOf(pids) - cpuBefore[k]]),
    );
    // The largest worker's peak: what one process needs.
    const workerRss = barge.workers.map((w) => peakRssMiB(w.pid));
    const peakRss = {
      api: peakRssMiB(barge.api.pid),
      worker: workerRss.some((r) => r === null) ? null : Math.max(...(workerRss as number[])),
    };
    const simulator = summarise(await sim.stats());
    const check = checkFiles(workload, run.output, run.errors, run.timedOut);
    const { output: _output, errors: _errors, ...timings } = run;
    return {
      kind: 'barge',
      ...timings,
      requestsPerSecond: requests / run.createToTerminalSeconds,
      endToEndRequestsPerSecond: requests / run.endToEndSeconds,
      check,
      outputBytes: Buffer.byteLength(run.output),
      errorBytes: Buffer.byteLength(run.errors),
      cpuSeconds,
      cpuSecondsPer1000: ((cpuSeconds.api + cpuSeconds.worker + cpuSeconds.postgres) / requests) * 1000,
      peakRssMiB: peakRss,
      warmupSeconds,
      simulator,
      effectiveConfig: {
        batches: barge.config.batches,
        routing: barge.config.routing,
        upstreamLimits: barge.config.upstreams[0]?.limits,
      },
      faultCounts: workload.faultCounts,
    };
  } finally {
    await barge.stop();
  }
}

const ratio = (a: number | undefined | null, b: number | undefined | null): number | null =>
  a != null && b != null && b > 0 ? a / b : null;

function goal(text: string, unit: Goal['unit'], value: number | null, met: (v: number) => boolean): Goal {
  return { goal: text, unit, value, met: value === null ? null : met(value) };
}

function showGoal(g: Goal): string {
  let value: string;
  if (g.value === null) value = '-';
  else if (g.unit === 'check') value = g.value === 1 ? 'yes' : 'no';
  else if (g.unit === '%') value = `${(g.value * 100).toFixed(1)}%`;
  else if (g.unit === 'x') value = `${g.timedOut ? '> ' : ''}${g.value.toFixed(2)}x`;
  else value = `${g.value.toFixed(0)} ${g.unit}`;
  const state = g.met === null ? 'n/a' : g.met ? 'met' : 'MISSED';
  return `${g.goal}: ${value}, ${state}${g.timedOut ? ' (batch timed out)' : ''}`;
}

async function runScenario(ctx: Context, scenario: Scenario): Promise<ScenarioResult> {
  const requests = Math.max(MIN_REQUESTS, Math.round(scenario.requests * ctx.options.scale));
  // The direct client and its warm-up send chat bodies to the chat endpoint only.
  if (scenario.direct && scenario.request)
    throw new Error(`${scenario.id}: no direct run for custom requests`);
  const clean = buildWorkload(scenario.id, requests, scenario.latency, undefined, scenario.request);
  const capacity = scenario.congestion?.capacity ?? scenario.concurrency;
  const perRequestMs = clean.meanLatencyMs * (1 + (scenario.congestion?.slowdown ?? 0));
  const idealSeconds = perRequestMs > 0 ? (requests * perRequestMs) / capacity / 1000 : null;
  const result: ScenarioResult = {
    id: scenario.id,
    title: scenario.title,
    requests,
    concurrency: scenario.concurrency,
    latency: scenario.latency,
    meanLatencyMs: clean.meanLatencyMs,
    idealSeconds,
    settings: BARGE_SETTINGS[scenario.id as Exclude<ScenarioId, 'sim'>],
    runs: {},
    ratios: {},
    goals: [],
  };
  const flags = scenario.congestion
    ? [
        '--capacity',
        String(scenario.congestion.capacity),
        '--capacity-slowdown',
        String(scenario.congestion.slowdown),
      ]
    : [];
  const sim = await startSimulatorProcess(flags, join(ctx.workDir, `simulator-${scenario.id}.log`));
  try {
    let direct: DirectRun | undefined;
    if (scenario.direct) {
      log(`  ${scenario.id}: direct client, ${requests} requests at ${scenario.concurrency} in flight`);
      direct = await directRun(sim, clean, scenario.concurrency, ctx.options.warmupRequests);
      result.runs.direct = direct;
      log(`  ${scenario.id}: direct ${direct.seconds.toFixed(1)} s, ${JSON.stringify(direct.statuses)}`);
    }
    log(`  ${scenario.id}: Barge, ${requests} requests`);
    const barge = await bargeRun(ctx, scenario, sim, clean, 'clean');
    result.runs.barge = barge;
    log(
      `  ${scenario.id}: Barge ${barge.createToTerminalSeconds.toFixed(1)} s, ${barge.status}, check ${barge.check.ok ? 'ok' : 'FAILED'}`,
    );
    let faulty: BargeRun | undefined;
    if (scenario.faults) {
      const workload = buildWorkload(
        `${scenario.id}-faulty`,
        requests,
        scenario.latency,
        scenario.faults,
        scenario.request,
      );
      log(`  ${scenario.id}: Barge with faults ${JSON.stringify(workload.faultCounts)}`);
      faulty = await bargeRun(ctx, scenario, sim, workload, 'faulty');
      result.runs.barge_faulty = faulty;
      log(
        `  ${scenario.id}: Barge with faults ${faulty.createToTerminalSeconds.toFixed(1)} s, ${faulty.status}, check ${faulty.check.ok ? 'ok' : 'FAILED'}`,
      );
    }

    const seconds = barge.createToTerminalSeconds;
    result.ratios = {
      bargeOverDirect: ratio(seconds, direct?.seconds),
      bargeOverIdeal: ratio(seconds, idealSeconds),
      directOverIdeal: ratio(direct?.seconds, idealSeconds),
      ...(faulty ? { faultyOverClean: ratio(faulty.createToTerminalSeconds, seconds) } : {}),
    };
    const goals: Goal[] = [];
    const timedOut = (g: Goal, ...runs: (BargeRun | undefined)[]): Goal =>
      runs.some((run) => run?.timedOut) ? { ...g, timedOut: true } : g;
    for (const run of [barge, faulty]) {
      if (!run) continue;
      const which = run === faulty ? 'faulty' : 'clean';
      goals.push(
        goal(
          `${which} batch: every custom_id once, in the right file`,
          'check',
          run.check.ok ? 1 : 0,
          (v) => v === 1,
        ),
      );
    }
    if (scenario.id === 'a') {
      const min = GOALS.minRequestsPerSecondAt0ms;
      goals.push(
        timedOut(
          goal(`>= ${min} requests/s`, 'req/s', barge.requestsPerSecond, (v) => v >= min),
          barge,
        ),
      );
    }
    const overDirect = GOALS.maxOverDirect[scenario.id];
    if (overDirect !== undefined) {
      const g = goal(`<= ${overDirect}x direct`, 'x', result.ratios.bargeOverDirect, (v) => v <= overDirect);
      goals.push(timedOut(g, barge));
    }
    const overIdeal = GOALS.maxOverIdeal[scenario.id];
    if (overIdeal !== undefined) {
      const g = goal(`<= ${overIdeal}x ideal`, 'x', result.ratios.bargeOverIdeal, (v) => v <= overIdeal);
      goals.push(timedOut(g, barge));
    }
    if (faulty) {
      const max = GOALS.maxFaultSlowdown;
      const g = goal(`faulty <= ${max}x clean`, 'x', result.ratios.faultyOverClean ?? null, (v) => v <= max);
      goals.push(timedOut(g, faulty));
    }
    const maxRss = GOALS.maxWorkerRssMiB[scenario.id];
    if (maxRss !== undefined) {
      goals.push(goal(`worker peak RSS < ${maxRss} MiB`, 'MiB', barge.peakRssMiB.worker, (v) => v < maxRss));
    }
    if (scenario.congestion) {
      const { min, max } = GOALS.sustainedInFlight;
      const sim = barge.simulator;
      goals.push(
        goal(
          `sustained in-flight at the simulator in ${min}..${max}`,
          'in flight',
          sim.sustainedInFlight,
          (v) => v >= min && v <= max,
        ),
      );
      goals.push(
        goal(
          `< ${GOALS.max429Share * 100}% of requests answered 429`,
          '%',
          sim.share429,
          (v) => v < GOALS.max429Share,
        ),
      );
    }
    result.goals = goals;
    return result;
  } finally {
    await sim.stop();
  }
}

async function runSimulatorScenario(ctx: Context): Promise<ScenarioResult> {
  // Cheap at any scale, and too noisy below ten thousand requests.
  const requests = Math.max(10_000, Math.round(SIMULATOR_BENCH.requests * ctx.options.scale));
  const base = { requests, concurrency: SIMULATOR_BENCH.concurrency, endpoint: 'chat', inProcess: false };
  const plain = await runSimulatorBench({ ...base, simulatorFlags: [] });
  log(`  ${describeSimulatorBench(plain)}`);
  // The congestion model switched on but never refusing: what its bookkeeping costs.
  const congestion = await runSimulatorBench({
    ...base,
    simulatorFlags: [
      '--capacity',
      '1000000',
      '--capacity-tpm',
      '1000000000000',
      '--capacity-slowdown',
      '0.5',
    ],
  });
  log(`  ${describeSimulatorBench(congestion)}`);
  return {
    id: 'sim',
    title: 'the simulator alone',
    requests,
    concurrency: SIMULATOR_BENCH.concurrency,
    runs: { plain, congestion },
    ratios: { congestionOverPlain: ratio(congestion.seconds, plain.seconds) },
    goals: [],
  };
}

// --- output --------------------------------------------------------------------------------

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

const fmt = (v: number | null | undefined, digits = 1, suffix = ''): string =>
  v == null || !Number.isFinite(v) ? '-' : `${v.toFixed(digits)}${suffix}`;

function table(results: ScenarioResult[]): string {
  const header = [
    'scenario',
    'requests',
    'in flight',
    'direct s',
    'Barge s',
    'Barge/direct',
    'Barge/ideal',
    'Barge req/s',
    'CPU s/1k',
    'RSS api/worker MiB',
    'sim sustained',
  ];
  const rows: string[][] = [header];
  for (const r of results) {
    if (r.error) {
      rows.push([r.id, 'error: ' + r.error.slice(0, 80)]);
      continue;
    }
    if (r.id === 'sim') {
      const plain = r.runs.plain as SimulatorBenchResult;
      const congestion = r.runs.congestion as SimulatorBenchResult;
      rows.push([
        'sim',
        String(r.requests),
        String(r.concurrency),
        `${Math.round(plain.requestsPerSecond)} req/s`,
        `congestion model on: ${Math.round(congestion.requestsPerSecond)} req/s`,
      ]);
      continue;
    }
    const direct = r.runs.direct as DirectRun | undefined;
    for (const [label, run] of Object.entries(r.runs)) {
      if (!('kind' in run) || run.kind !== 'barge') continue;
      const barge = run as BargeRun;
      const clean = label === 'barge';
      rows.push([
        `${r.id}${clean ? '' : ' faulty'}`,
        String(r.requests),
        String(r.concurrency),
        clean ? fmt(direct?.seconds) : '-',
        fmt(barge.createToTerminalSeconds) + (barge.timedOut ? ' (timed out)' : ''),
        clean ? fmt(r.ratios.bargeOverDirect, 2, 'x') : `${fmt(r.ratios.faultyOverClean, 2, 'x')} clean`,
        clean
          ? fmt(r.ratios.bargeOverIdeal, 2, 'x')
          : fmt(ratio(barge.createToTerminalSeconds, r.idealSeconds), 2, 'x'),
        fmt(barge.requestsPerSecond, 0),
        fmt(barge.cpuSecondsPer1000, 2),
        `${fmt(barge.peakRssMiB.api, 0)}/${fmt(barge.peakRssMiB.worker, 0)}`,
        fmt(barge.simulator.sustainedInFlight, (barge.simulator.sustainedInFlight ?? 0) < 10 ? 1 : 0),
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (cell ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const benchDir = join(ROOT, '.barge', 'bench');
  const workDir = join(benchDir, `run-${stamp}`);
  mkdirSync(workDir, { recursive: true });
  const resultsPath = join(benchDir, `results-${stamp}.json`);
  const needsBarge = options.scenarios.some((id) => id !== 'sim');
  const ctx: Context = {
    options,
    stamp,
    workDir,
    apiKey: needsBarge ? createApiKey(ROOT, `bench-${stamp}`) : undefined,
    pids: infraPids(),
  };
  if (needsBarge && ctx.pids.postgres === undefined)
    log('warning: no Postgres postmaster found under .barge/local; its CPU is not counted');

  const report = {
    startedAt: new Date().toISOString(),
    finishedAt: null as string | null,
    git: {
      commit: git(['rev-parse', 'HEAD']),
      branch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
      dirty: (git(['status', '--porcelain']) ?? '') !== '',
    },
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      node: process.version,
      loadavgAtStart: loadavg(),
      loadavgAtEnd: null as number[] | null,
    },
    options,
    logs: workDir,
    scenarios: [] as ScenarioResult[],
  };
  const save = (): void => writeFileSync(resultsPath, JSON.stringify(report, null, 2) + '\n');

  log(
    `bench: scenarios ${options.scenarios.join(' ')}, scale ${options.scale}, ${options.workers} worker(s); logs in ${workDir}`,
  );
  let failed = false;
  for (const id of options.scenarios) {
    log(`scenario ${id}`);
    let result: ScenarioResult;
    try {
      result =
        id === 'sim'
          ? await runSimulatorScenario(ctx)
          : await runScenario(
              ctx,
              SCENARIOS.find((s) => s.id === id)!,
            );
    } catch (error) {
      failed = true;
      log(`  ${id}: failed: ${error instanceof Error ? error.stack : String(error)}`);
      result = {
        id,
        title: id,
        runs: {},
        ratios: {},
        goals: [],
        error: error instanceof Error ? error.message : String(error),
      };
    }
    for (const run of Object.values(result.runs)) if ('check' in run && !run.check.ok) failed = true;
    report.scenarios.push(result);
    save();
  }
  report.finishedAt = new Date().toISOString();
  report.machine.loadavgAtEnd = loadavg();
  save();

  console.log(`\n${table(report.scenarios)}\n`);
  console.log('Barge s: batches.create to terminal status; ideal: requests x mean latency / concurrency;');
  console.log('CPU s/1k: API + worker + Postgres CPU seconds per 1,000 requests, upload to download.\n');
  for (const r of report.scenarios) {
    for (const g of r.goals) console.log(`  ${r.id}: ${showGoal(g)}`);
    const f = r.runs.barge as BargeRun | undefined;
    if (r.id === 'f' && f) {
      console.log(
        `  f: 429s by cause ${JSON.stringify(f.simulator.rateLimited)}, peak in flight ${f.simulator.peakInFlight}`,
      );
    }
    if (GOALS.maxWorkerRssMiB[r.id] !== undefined && f) {
      console.log(
        `  ${r.id}: output file ${fmt(f.outputBytes / 1024 ** 2, 1)} MiB, error file ${f.errorBytes} bytes; ` +
          `finalize ${fmt(f.finalizeSeconds)} s (polled; phases ${JSON.stringify(f.phases)}), download ${fmt(f.downloadSeconds)} s`,
      );
    }
  }
  console.log(`\nresults: ${resultsPath}`);
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error('bench:', error instanceof Error ? error.stack : error);
  process.exit(1);
});
