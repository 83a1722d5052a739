import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { call, chat, hold, until } from './http-client';

/** A request that takes a slot and keeps it until released. */
const hanging = (n: number): object => chat(`hold ${n}`, { simulate: { fail_times: 1, fail_mode: 'hang' } });

describe('simulator congestion model over HTTP', () => {
  const sims: SimulatorHandle[] = [];
  const start = async (options: Parameters<typeof startSimulator>[0]): Promise<SimulatorHandle> => {
    const sim = await startSimulator({ port: 0, ...options });
    sims.push(sim);
    return sim;
  };
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((sim) => sim.close()));
  });

  it('answers 429 at once beyond its capacity, as a provider does, and serves again when a slot frees', async () => {
    const sim = await start({ capacity: 2, capacityRetryAfterMs: 250 });
    const held = [hold(sim, hanging(1)), hold(sim, hanging(2))];
    await until(() => sim.stats().serving === 2, 'both slots are taken');

    const refused = await Promise.all(
      [1, 2, 3].map((i) => call(sim, 'POST', '/v1/chat/completions', chat(`q${i}`))),
    );
    for (const reply of refused) {
      expect(reply.status).toBe(429);
      expect(reply.headers['retry-after-ms']).toBe('250');
      expect(reply.headers['retry-after']).toBe('1');
      expect(reply.json.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
      expect(reply.json.error.message).toContain('capacity');
    }
    expect(refused).toHaveLength(3);

    held[0].release();
    await until(() => sim.stats().serving === 1, 'a slot is free again');
    expect((await call(sim, 'POST', '/v1/chat/completions', chat('now'))).status).toBe(200);
    held[1].release();
    await until(() => sim.stats().inFlight === 0, 'everything has ended');

    const stats = sim.stats();
    expect(stats.byStatus).toEqual({ hang: 2, '429': 3, '200': 1 });
    expect(stats.rateLimited).toEqual({ capacity: 3, tpm: 0, directive: 0, global: 0 });
    expect(stats.peakServing).toBe(2);
    expect(stats.serving).toBe(0);
    // The refused requests were in flight too, briefly: in-flight counts every request.
    expect(stats.peakInFlight).toBeGreaterThanOrEqual(3);
  });

  it('does not count a request refused for capacity as a fail_times attempt', async () => {
    const sim = await start({ capacity: 1 });
    const scripted = chat('scripted', { simulate: { fail_times: 1, fail_status: 500 } });
    const headers = { 'x-barge-request-id': 'batch_9:4' };
    const held = hold(sim, hanging(1));
    await until(() => sim.stats().serving === 1, 'the slot is taken');
    expect((await call(sim, 'POST', '/v1/chat/completions', scripted, { headers })).status).toBe(429);
    held.release();
    await until(() => sim.stats().serving === 0, 'the slot is free');
    // The first attempt that reached the model fails as scripted, the next one succeeds.
    expect((await call(sim, 'POST', '/v1/chat/completions', scripted, { headers })).status).toBe(500);
    expect((await call(sim, 'POST', '/v1/chat/completions', scripted, { headers })).status).toBe(200);
    expect(sim.stats().rateLimited.capacity).toBe(1);
  });

  it('holds a slot while a scripted failure "thinks", and frees it after a reset connection', async () => {
    const sim = await start({ capacity: 1 });
    const reset = chat('reset', { simulate: { fail_times: 1, fail_mode: 'reset' } });
    await expect(call(sim, 'POST', '/v1/chat/completions', reset)).rejects.toThrow(
      /ECONNRESET|socket hang up/,
    );
    await until(() => sim.stats().serving === 0, 'the reset request gave its slot back');
    expect((await call(sim, 'POST', '/v1/chat/completions', reset)).status).toBe(200);
  });

  it('meters tokens per minute and answers 429 of type "tokens" with the time to refill', async () => {
    // 600 per minute: a bucket of 10 tokens; one chat answer costs more, so the second must wait.
    const sim = await start({ capacityTpm: 600 });
    const first = await call(sim, 'POST', '/v1/chat/completions', chat('tokens please'));
    expect(first.status).toBe(200);
    expect(first.json.usage.total_tokens).toBeGreaterThan(10);
    const second = await call(sim, 'POST', '/v1/chat/completions', chat('tokens please'));
    expect(second.status).toBe(429);
    expect(second.json.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    // The debt is at least one answer's cost beyond the 10-token bucket, at 10 tokens per second.
    expect(Number(second.headers['retry-after-ms'])).toBeGreaterThan(500);
    expect(sim.stats().rateLimited).toEqual({ capacity: 0, tpm: 1, directive: 0, global: 0 });
    // POST /_sim/reset refills the bucket.
    await call(sim, 'POST', '/_sim/reset');
    expect((await call(sim, 'POST', '/v1/chat/completions', chat('tokens please'))).status).toBe(200);
  });

  it('counts 429s asked for by a directive or drawn from the global rate by their cause', async () => {
    const sim = await start({ rateLimitRate: 1 });
    await call(sim, 'POST', '/v1/embeddings', { model: 'm', input: 'x' });
    const directed = chat('once', { simulate: { fail_times: 1, fail_status: 429 } });
    expect((await call(sim, 'POST', '/v1/chat/completions', directed)).status).toBe(429);
    expect(sim.stats().rateLimited).toEqual({ capacity: 0, tpm: 0, directive: 1, global: 1 });
    expect(sim.stats('m').rateLimited).toEqual({ capacity: 0, tpm: 0, directive: 0, global: 1 });
  });

  it('reports time-weighted in-flight and a per-second history over HTTP', async () => {
    const sim = await start({ capacity: 10 });
    const slow = chat('slow', { simulate: { latency_ms: 30 } });
    await Promise.all(Array.from({ length: 4 }, () => call(sim, 'POST', '/v1/chat/completions', slow)));
    await until(() => sim.stats().inFlight === 0, 'all answers have ended');
    const stats = (await call(sim, 'GET', '/_sim/stats')).json;
    expect(stats).toEqual(sim.stats());
    expect(stats.activeMs).toBeGreaterThan(0);
    expect(stats.avgInFlight).toBeGreaterThan(0);
    expect(stats.avgInFlight).toBeLessThanOrEqual(4);
    expect(stats.avgServing).toBeLessThanOrEqual(stats.avgInFlight);
    expect(stats.peakServing).toBeLessThanOrEqual(4);
    expect(stats.perSecond.length).toBeGreaterThanOrEqual(1);
    const arrivals = (stats.perSecond as { arrivals: number }[]).reduce((sum, s) => sum + s.arrivals, 0);
    expect(arrivals).toBe(4);
    for (const second of stats.perSecond) expect(Number.isInteger(second.t)).toBe(true);
  });
});
