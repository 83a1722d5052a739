/**
 * Self-benchmark of the upstream simulator: a fixed number of chat completions, latency 0,
 * over N concurrent keep-alive connections on loopback. It proves the simulator is never
 * the bottleneck of a Barge benchmark.
 *
 *   node dist/bench/simulator.bench.js [--requests 20000] [--concurrency 64]
 *                                      [--endpoint chat|completions|embeddings|responses|moderations]
 *                                      [--in-process]
 *
 * By default the simulator runs in a child process so that client and server do not share
 * a core; --in-process measures both on one event loop (a pessimistic bound).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { startSimulator, type SimulatorHandle } from '../src/simulator/server';

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

interface Args {
  requests: number;
  concurrency: number;
  endpoint: string;
  inProcess: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { requests: 20_000, concurrency: 64, endpoint: 'chat', inProcess: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (): number => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
      return n;
    };
    if (flag === '--requests') args.requests = positive();
    else if (flag === '--concurrency') args.concurrency = positive();
    else if (flag === '--endpoint') args.endpoint = value();
    else if (flag === '--in-process') args.inProcess = true;
    else throw new Error(`unknown option ${flag}`);
  }
  if (!(args.endpoint in ENDPOINTS))
    throw new Error(`--endpoint must be one of ${Object.keys(ENDPOINTS).join(', ')}`);
  return args;
}

interface Target {
  url: URL;
  stop(): Promise<void>;
}

async function startChild(): Promise<Target> {
  const entry = join(__dirname, '..', 'src', 'simulator', 'main.js');
  const child: ChildProcess = spawn(process.execPath, [entry, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stdout = child.stdout;
  if (stdout === null) throw new Error('no stdout pipe to the simulator');
  const url = await new Promise<URL>((resolve, reject) => {
    let out = '';
    stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /simulator listening on (\S+)/.exec(out);
      if (match) resolve(new URL(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`simulator exited with code ${code} before listening`)));
    child.once('error', reject);
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function startInProcess(): Promise<Target> {
  const sim: SimulatorHandle = await startSimulator({ port: 0 });
  return { url: new URL(sim.url), stop: () => sim.close() };
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

async function run(args: Args, target: Target): Promise<void> {
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
  const rps = Math.round(args.requests / seconds);
  const mode = args.inProcess ? 'in-process' : 'child process';
  console.log(
    `simulator bench (${mode}, ${endpoint.path}): ${args.requests} requests, concurrency ${args.concurrency}, ` +
      `${failures} non-200, ${seconds.toFixed(2)} s, ${rps} req/s, ` +
      `p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
  );
  if (failures > 0) process.exitCode = 1;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const target = args.inProcess ? await startInProcess() : await startChild();
  const deadline = setTimeout(() => {
    console.error(`simulator bench: no result within ${DEADLINE_MS / 1000} s`);
    process.exit(1);
  }, DEADLINE_MS);
  try {
    await run(args, target);
  } finally {
    clearTimeout(deadline);
    await target.stop();
  }
}

main().catch((error: unknown) => {
  console.error('simulator bench:', error instanceof Error ? error.message : error);
  process.exit(1);
});
