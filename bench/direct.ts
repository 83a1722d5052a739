/**
 * The direct client: what a hand-written program gets from the same simulator. An undici
 * Pool with one keep-alive connection per loop and `concurrency` loops, each sending the
 * next body as soon as its previous answer has been read.
 */
import { Pool } from 'undici';
import { ENDPOINT } from './workload';

export interface DirectResult {
  seconds: number;
  requestsPerSecond: number;
  /** HTTP status (or "error" for a failed connection) -> count. */
  statuses: Record<string, number>;
  /** CPU seconds of the bench process itself while it ran. */
  clientCpuSeconds: number;
}

/**
 * Sends `bodies` at `concurrency`. The warm-up bodies go first on the same pool, so the
 * measured run starts with open connections and a warm JIT, as a long-running client would;
 * `beforeMeasure` runs between the two (the bench resets the simulator's counters there).
 */
export async function runDirect(
  origin: string,
  bodies: Buffer[],
  concurrency: number,
  warmup: { bodies: Buffer[]; beforeMeasure: () => Promise<void> },
): Promise<DirectResult> {
  const pool = new Pool(origin, {
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    // Lognormal tails reach tens of seconds; nothing here should time out before the bench does.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const statuses = new Map<string, number>();
  const count = (key: string): void => {
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  };
  let next = 0;
  let queue = warmup.bodies;
  const loop = async (): Promise<void> => {
    while (next < queue.length) {
      const body = queue[next++];
      try {
        const response = await pool.request({
          path: ENDPOINT,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await response.body.text();
        count(String(response.statusCode));
      } catch {
        count('error');
      }
    }
  };
  const loops = (n: number): Promise<void[]> =>
    Promise.all(Array.from({ length: Math.min(concurrency, n) }, loop));
  await loops(queue.length);
  await warmup.beforeMeasure();
  statuses.clear();
  queue = bodies;
  next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await loops(bodies.length);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await pool.close();
  return {
    seconds,
    requestsPerSecond: bodies.length / seconds,
    statuses: Object.fromEntries(statuses),
    clientCpuSeconds: (used.user + used.system) / 1e6,
  };
}
