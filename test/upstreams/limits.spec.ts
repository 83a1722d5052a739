import type { DataSource } from 'typeorm';
import type { BargeConfig } from '../../src/config/config';
import { connectDatabase } from '../../src/database/data-source';
import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { abortError } from '../../src/upstreams/abort';
import type { AttemptRequest, AttemptResponse, UpstreamTransport } from '../../src/upstreams/http-upstream';
import type { UpstreamGateway } from '../../src/upstreams/upstream-gateway';
import { stackConfig } from '../support/stack';
import { callOf, chat, cleanLimitTables, configWith, Gateways, httpResult, uniqueName } from './support';

/** Requests that arrived at the simulator within `windowMs` of the first one. */
function firstWindow(times: number[], windowMs: number): number {
  const start = Math.min(...times);
  return times.filter((t) => t < start + windowMs).length;
}

/** Sends `count` chat calls at once through `gateway`; resolves when all succeeded. */
async function burst(gateway: UpstreamGateway, count: number, body = chat('hello')): Promise<void> {
  const results = await Promise.all(Array.from({ length: count }, () => gateway.call(callOf({ body }))));
  for (const r of results) expect(httpResult(r).status).toBe(200);
}

/** A transport whose answers the test gives by hand, to watch the pacing step by step. */
class HandHeldTransport implements UpstreamTransport {
  private readonly waiting: ((response: AttemptResponse) => void)[] = [];

  get inFlight(): number {
    return this.waiting.length;
  }

  send({ signal }: AttemptRequest): Promise<AttemptResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      signal.addEventListener('abort', () => reject(abortError(signal)), { once: true });
    });
  }

  answerAll(status: number): void {
    this.answer(this.waiting.length, status);
  }

  answer(n: number, status: number, headers: Record<string, string> = {}): void {
    for (const resolve of this.waiting.splice(0, n))
      resolve({ kind: 'response', status, headers, text: '{}', body: {} });
  }

  async close(): Promise<void> {}
}

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Concurrency and rate limits, measured where they matter: at the upstream. "Two workers"
 * are two gateway instances sharing the test Postgres, as two worker processes would.
 */
describe('upstream limits', () => {
  let db: DataSource;
  let sim: SimulatorHandle;
  const gateways = new Gateways(() => db);

  beforeAll(async () => {
    db = await connectDatabase(stackConfig(), 'test-upstreams');
  });

  afterEach(async () => {
    await gateways.closeAll();
    await sim?.close();
  });

  afterAll(async () => {
    await cleanLimitTables(db);
    await db.destroy();
  });

  const oneUpstream = (limits: object, extra: object = {}): BargeConfig =>
    configWith({ upstreams: [{ name: uniqueName('limited'), baseUrl: sim.baseUrl, limits, ...extra }] });

  it('never has more than maxConcurrency requests in flight', async () => {
    sim = await startSimulator({ port: 0, latency: 'fixed:40' });
    const gateway = gateways.make(oneUpstream({ maxConcurrency: 4 }));
    await burst(gateway, 40);
    expect(sim.stats().peakInFlight).toBeLessThanOrEqual(4);
    expect(sim.stats().totalRequests).toBe(40);
  });

  it('holds the concurrency limit across two workers', async () => {
    sim = await startSimulator({ port: 0, latency: 'fixed:40' });
    const config = oneUpstream({ maxConcurrency: 4 });
    const [first, second] = [gateways.make(config), gateways.make(config)];
    await Promise.all([burst(first, 30), burst(second, 30)]);
    expect(sim.stats().peakInFlight).toBeLessThanOrEqual(4);
    expect(sim.stats().totalRequests).toBe(60);
  });

  it('applies per-model limits on top, by the upstream model name', async () => {
    sim = await startSimulator({ port: 0, latency: 'fixed:40' });
    const gateway = gateways.make(
      oneUpstream(
        { maxConcurrency: 6, models: { 'gpt-4o-mini': { maxConcurrency: 2 } } },
        { aliases: { small: 'gpt-4o-mini' } },
      ),
    );
    await Promise.all([
      burst(gateway, 12, chat('hi', { model: 'gpt-4o-mini' })),
      burst(gateway, 12, chat('hi', { model: 'small' })),
      burst(gateway, 24, chat('hi', { model: 'gpt-4o' })),
    ]);
    expect(sim.stats('gpt-4o-mini').peakInFlight).toBeLessThanOrEqual(2);
    expect(sim.stats('gpt-4o-mini').totalRequests).toBe(24);
    expect(sim.stats().peakInFlight).toBeLessThanOrEqual(6);
  });

  it('keeps requests per minute, shared by two workers', async () => {
    sim = await startSimulator({ port: 0 });
    // 600 a minute: 10 a second, with a burst of one second's worth.
    const config = oneUpstream({ requestsPerMinute: 600 });
    const [first, second] = [gateways.make(config), gateways.make(config)];
    await Promise.all([burst(first, 18), burst(second, 17)]);
    const times = sim.stats().requestTimes;
    expect(times).toHaveLength(35);
    // In any t seconds at most (1 + t) x 10: 20 in the first second.
    expect(firstWindow(times, 1000)).toBeLessThanOrEqual(20);
    expect(firstWindow(times, 2000)).toBeLessThanOrEqual(30);
    // 35 requests minus the burst of 10 need at least 2.5 s.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2400);
  });

  it('keeps tokens per minute, charging the estimate up front', async () => {
    sim = await startSimulator({ port: 0 });
    // 60,000 a minute: 1,000 tokens a second, burst 1,000. Each request is 250 tokens
    // (1,000 characters), and the simulator reports exactly that as its usage.
    const gateway = gateways.make(oneUpstream({ tokensPerMinute: 60_000 }));
    const body = { model: 'text-embedding-3-small', input: 'x'.repeat(1000) };
    const results = await Promise.all(
      Array.from({ length: 16 }, () => gateway.call(callOf({ endpoint: '/v1/embeddings', body }))),
    );
    for (const r of results) expect(httpResult(r).body).toMatchObject({ usage: { total_tokens: 250 } });
    const times = sim.stats().requestTimes;
    // 1,000 + 1,000 tokens: 8 requests in the first second.
    expect(firstWindow(times, 1000)).toBeLessThanOrEqual(8);
    // 4,000 tokens minus the burst of 1,000 need at least 3 s.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2900);
  });

  it('narrows its concurrency when 429s grow with it, keeping each refused slot for its Retry-After', async () => {
    const transport = new HandHeldTransport();
    const config = configWith({
      upstreams: [
        { name: uniqueName('paced'), baseUrl: 'http://127.0.0.1:9/v1', limits: { maxConcurrency: 8 } },
      ],
    });
    // Windows of 8 answers; random() = 0: retries follow at once, so only the pacing holds them.
    const gateway = gateways.make(config, {
      transport: () => transport,
      random: () => 0,
      pacing: { minWindow: 8 },
    });
    const calls = Array.from({ length: 8 }, () => gateway.call(callOf()));
    await waitUntil(() => transport.inFlight === 8);

    // Half refused: the upstream served 4 of 8, so the limit drops to 4 (by at most half).
    transport.answer(4, 429, { 'retry-after-ms': '100' });
    transport.answer(4, 200);
    // The refused slots stay taken for their Retry-After: nothing is sent meanwhile.
    await new Promise((r) => setTimeout(r, 50));
    expect(transport.inFlight).toBe(0);
    // Then the four retries go out, within the new limit, while four more calls wait.
    const more = Array.from({ length: 4 }, () => gateway.call(callOf()));
    await waitUntil(() => transport.inFlight === 4);
    await new Promise((r) => setTimeout(r, 50));
    expect(transport.inFlight).toBe(4);
    transport.answerAll(200);
    await waitUntil(() => transport.inFlight === 4);
    transport.answerAll(200);
    for (const result of await Promise.all([...calls, ...more])) {
      expect(result).toMatchObject({ kind: 'http', status: 200 });
    }
  });

  it('shares slots round-robin between tenants, then batches', async () => {
    sim = await startSimulator({ port: 0, latency: 'fixed:10' });
    const gateway = gateways.make(oneUpstream({ maxConcurrency: 2 }));
    const finished: string[] = [];
    const send = (tenantId: string, batchId: string, n: number): Promise<void>[] =>
      Array.from({ length: n }, () =>
        gateway.call(callOf({ tenantId, batchId })).then(() => void finished.push(`${tenantId}/${batchId}`)),
      );
    // Tenant A queues a large batch first; B's small batch and A's second small batch follow.
    const big = send('A', 'big', 60);
    await new Promise((r) => setImmediate(r));
    const small = send('B', 'small', 6);
    const second = send('A', 'second', 6);
    await Promise.all([...big, ...small, ...second]);

    // Round-robin: B gets every other slot and A's turns alternate between its batches, so the
    // small batches are done after about 12 and 18 completions, not at the end of all 72.
    expect(finished.lastIndexOf('B/small')).toBeLessThan(16);
    expect(finished.lastIndexOf('A/second')).toBeLessThan(24);
    expect(sim.stats().peakInFlight).toBeLessThanOrEqual(2);
  });
});
