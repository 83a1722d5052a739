/**
 * End-to-end batch benchmark: the official SDK uploads N requests, Barge runs them against
 * the simulator, and we report time per phase, throughput, and peak memory of the API and
 * worker processes. Run through `npm run bench` (scripts/bench.sh), which starts the stack.
 *
 *   BENCH_REQUESTS   requests in the batch (default 100000; the engine is meant for 1000000)
 *   BENCH_LATENCY_MS simulated upstream latency per request (default 0)
 */
import { spawn, ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import OpenAI, { toFile } from 'openai';
import { ApiKeyStore } from '../src/auth/api-key-store';
import { buildConfig } from '../src/config/config';
import { connectDatabase } from '../src/database/data-source';

const N = Number(process.env.BENCH_REQUESTS ?? 100_000);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 0);
const ROOT = join(__dirname, '..', '..');

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function start(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'dist', entry)], {
    env: { ...process.env, ...env },
    stdio: 'inherit',
  });
  return child;
}

async function main(): Promise<void> {
  const env = {
    BARGE_API_PORT: '8390',
    BARGE_TEMPORAL_TASK_QUEUE: 'bench',
    BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: 'bench-upstream',
    BARGE_MAX_REQUESTS_PER_BATCH: String(Math.max(N, 50_000)),
    BARGE_MAX_BATCH_FILE_BYTES: String(2 * 1024 ** 3),
    BARGE_MAX_FILE_BYTES: String(2 * 1024 ** 3),
    BARGE_LOG_LEVEL: 'warn',
  };
  const config = buildConfig({ ...process.env, ...env });
  const db = await connectDatabase(config, 'barge-bench');
  const { key } = await new ApiKeyStore(db).create(`bench-${Date.now()}`);
  await db.destroy();

  const api = start('src/main.js', env);
  const worker = start('src/worker.js', env);
  const peak = { api: 0, worker: 0 };
  const sampler = setInterval(() => {
    peak.api = Math.max(peak.api, rssMb(api.pid!));
    peak.worker = Math.max(peak.worker, rssMb(worker.pid!));
  }, 200);
  try {
    const baseURL = `http://127.0.0.1:${env.BARGE_API_PORT}`;
    for (let i = 0; ; i++) {
      if ((await fetch(`${baseURL}/readyz`).catch(() => undefined))?.ok) break;
      if (i > 300) throw new Error('API did not become ready');
      await new Promise((r) => setTimeout(r, 200));
    }
    const client = new OpenAI({ apiKey: key, baseURL: `${baseURL}/v1` });
    const simulate = LATENCY ? { simulate: { latency_ms: LATENCY } } : {};
    async function* lines() {
      for (let i = 0; i < N; i++) {
        yield (
          JSON.stringify({
            custom_id: `bench-${i}`,
            method: 'POST',
            url: '/v1/chat/completions',
            body: {
              model: 'gpt-4o-mini',
              messages: [{ role: 'user', content: `Question number ${i}?` }],
              ...simulate,
            },
          }) + '\n'
        );
      }
    }
    const t0 = Date.now();
    const file = await client.files.create({
      file: await toFile(Readable.from(lines()), 'bench.jsonl'),
      purpose: 'batch',
    });
    const tUpload = Date.now();
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const seen: Record<string, number> = {};
    let current = batch;
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(current.status)) {
      await new Promise((r) => setTimeout(r, 250));
      current = await client.batches.retrieve(batch.id);
      seen[current.status] ??= Date.now();
    }
    const tEnd = Date.now();
    const tDownload0 = Date.now();
    const content = await client.files.content(current.output_file_id!);
    let bytes = 0;
    let outLines = 0;
    for await (const chunk of content.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const b of chunk) if (b === 10) outLines++;
    }
    const tDownload = Date.now() - tDownload0;

    const s = (ms: number) => (ms / 1000).toFixed(1);
    const validating = (current.in_progress_at! - current.created_at) * 1000;
    const inProgress = (current.finalizing_at! - current.in_progress_at!) * 1000;
    const finalizing = (current.completed_at! - current.finalizing_at!) * 1000;
    const total = tEnd - tUpload;
    console.log(`\nbatch of ${N} chat requests, simulator latency ${LATENCY} ms, status ${current.status}`);
    console.log(`  counts          ${JSON.stringify(current.request_counts)}; output lines ${outLines}`);
    console.log(`  upload          ${s(tUpload - t0)} s`);
    console.log(`  validating      ~${s(validating)} s   (timestamps have 1 s resolution)`);
    console.log(
      `  in_progress     ~${s(inProgress)} s   -> ${Math.round(N / Math.max(inProgress / 1000, 1))} requests/s`,
    );
    console.log(
      `  finalizing      ~${s(finalizing)} s   (${((100 * finalizing) / total).toFixed(1)}% of create->completed)`,
    );
    console.log(
      `  create->done    ${s(total)} s   -> ${Math.round(N / (total / 1000))} requests/s end to end`,
    );
    console.log(`  download        ${(bytes / 1024 ** 2).toFixed(1)} MiB in ${s(tDownload)} s`);
    console.log(`  peak RSS        api ${peak.api.toFixed(0)} MiB, worker ${peak.worker.toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    api.kill('SIGTERM');
    worker.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
