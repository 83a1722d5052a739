/**
 * Self-benchmark of the upstream simulator: a fixed number of chat completions, latency 0,
 * over N concurrent keep-alive connections on loopback. It proves the simulator is never
 * the bottleneck of a Barge benchmark. `npm run bench -- sim` runs it as a scenario; alone:
 *
 *   node dist/bench/simulator.bench.js [--requests 20000] [--concurrency 64]
 *                                      [--endpoint chat|completions|embeddings|responses|moderations]
 *                                      [--in-process] [-- SIMULATOR FLAGS...]
 *
 * By default the simulator runs in a child process so that client and server do not share
 * a core; --in-process measures both on one event loop (a pessimistic bound). Simulator
 * flags after `--` (e.g. `-- --capacity 100000`) measure the cost of its other modes.
 */
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCli } from '../src/simulator/options';
import { startSimulator } from '../src/simulator/server';
import { startSimulatorProcess } from './simulator-process';

const ENDPOINTS: Record<string, { path: string; body: (i: number) => object }> = {
  chat: {
    path: '/v1/chat/completions',
    body: (i) => ({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Benchmark question number ${i}?` }],
    }),
  },
  completions: {
    path: '/v1/completions',
    body: (i) => ({ model: 'gpt-3.5-turbo-instruct', prompt: `Prompt ${i}` }),
  },
  embeddings: {
    path: '/v1/embeddings',
    body: (i) => ({ model: 'text-embedding-3-small', input: `Text ${i}` }),
  },
  responses: {
    path: '/v1/responses',
    body: (i) => ({ model: 'gpt-4o-mini', input: `Benchmark question ${i}?` }),
  },
  moderations: { path: '/v1/moderations', body: (i) => ({ input: `Harmless text ${i}` }) },
};

/** The whole run may not take longer than this; a stuck benchmark must fail, not hang CI. */
const DEADLINE_MS = 120_000;

export interface SimulatorBenchArgs {
  requests: number;
  concurrency: number;
  endpoint: string;
  inProcess: boolean;
  /** Flags for the simulator, as on its command line. */
  simulatorFlags: string[];
}

export interface SimulatorBenchResult {
  mode: 'in-process' | 'child process';
  path: string;
  requests: number;
  concurrency: number;
  simulatorFlags: string[];
  nonOk: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function parseBenchArgs(argv: string[]): SimulatorBenchArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '64' },
      endpoint: { type: 'string', default: 'chat' },
      'in-process': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const positive = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer`);
    return n;
  };
  if (!(values.endpoint in ENDPOINTS))
    throw new Error(`--endpoint must be one of ${Object.keys(ENDPOINTS).join(', ')}`);
  return {
    requests: positive('requests', values.requests),
    concurrency: positive('concurrency', values.concurrency),
    endpoint: values.endpoint,
    inProcess: values['in-process'],
    simulatorFlags: positionals,
  };
}

interface Target {
  url: URL;
  stop(): Promise<void>;
}

async function startTarget(args: SimulatorBenchArgs): Promise<Target> {
  if (args.inProcess) {
    const cli = parseCli(['--port', '0', ...args.simulatorFlags]);
    if (cli.kind !== 'run') throw new Error('--help is not a simulator flag here');
    const sim = await startSimulator(cli.options);
    return { url: new URL(sim.url), stop: () => sim.close() };
  }
  const sim = await startSimulatorProcess(args.simulatorFlags, join(tmpdir(), 'barge-simulator-bench.log'));
  return { url: new URL(sim.url), stop: () => sim.stop() };
}

/** One POST; resolves with the status once the whole response body has arrived. */
function post(agent: Agent, url: URL, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(args: SimulatorBenchArgs, target: Target): Promise<SimulatorBenchResult> {
  const endpoint = ENDPOINTS[args.endpoint];
  // Distinct bodies so the run exercises hashing and text building, not one cached path.
  const bodies = Array.from({ length: 256 }, (_, i) => Buffer.from(JSON.stringify(endpoint.body(i))));
  const agent = new Agent({ keepAlive: true, maxSockets: args.concurrency });

  const drive = async (total: number, latencies?: Float64Array): Promise<number> => {
    let issued = 0;
    let failures = 0;
    const worker = async (): Promise<void> => {
      while (issued < total) {
        const i = issued++;
        const started = performance.now();
        const status = await post(agent, target.url, endpoint.path, bodies[i % bodies.length]);
        if (latencies) latencies[i] = performance.now() - started;
        if (status !== 200) failures++;
      }
    };
    await Promise.all(Array.from({ length: args.concurrency }, worker));
    return failures;
  };

  // Warm-up: open the keep-alive connections and let the JIT settle before timing.
  await drive(Math.min(2000, args.requests));

  const latencies = new Float64Array(args.requests);
  const started = performance.now();
  const failures = await drive(args.requests, latencies);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();

  latencies.sort();
  return {
    mode: args.inProcess ? 'in-process' : 'child process',
    path: endpoint.path,
    requests: args.requests,
    concurrency: args.concurrency,
    simulatorFlags: args.simulatorFlags,
    nonOk: failures,
    seconds,
    requestsPerSecond: args.requests / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function runSimulatorBench(args: SimulatorBenchArgs): Promise<SimulatorBenchResult> {
  const target = await startTarget(args);
  let deadline: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new Error(`no result within ${DEADLINE_MS / 1000} s`)), DEADLINE_MS);
    });
    return await Promise.race([measure(args, target), timeout]);
  } finally {
    clearTimeout(deadline);
    await target.stop();
  }
}

export function describeSimulatorBench(r: SimulatorBenchResult): string {
  const flags = r.simulatorFlags.length > 0 ? ` [${r.simulatorFlags.join(' ')}]` : '';
  return (
    `simulator bench (${r.mode}, ${r.path}${flags}): ${r.requests} requests, concurrency ${r.concurrency}, ` +
    `${r.nonOk} non-200, ${r.seconds.toFixed(2)} s, ${Math.round(r.requestsPerSecond)} req/s, ` +
    `p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`
  );
}

if (require.main === module) {
  runSimulatorBench(parseBenchArgs(process.argv.slice(2))).then(
    (result) => {
      console.log(describeSimulatorBench(result));
      if (result.nonOk > 0) process.exitCode = 1;
    },
    (error: unknown) => {
      console.error('simulator bench:', error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
