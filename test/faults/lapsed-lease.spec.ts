import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/database/data-source';
import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { PgLimitStore, type LimitStore } from '../../src/upstreams/limit-store';
import { HttpUpstreamGateway } from '../../src/upstreams/gateway';
import { stackConfig, waitFor } from '../support/stack';
import { callOf, chat, configWith, uniqueName } from '../upstreams/support';

/** A limit store that can be cut off from Postgres, as a worker behind a network partition is. */
class CutOffStore implements LimitStore {
  cut = false;
  constructor(private readonly inner: LimitStore) {}
  private check(): void {
    if (this.cut) throw new Error('connect ETIMEDOUT');
  }
  leaseTransaction: LimitStore['leaseTransaction'] = (fn) => {
    this.check();
    return this.inner.leaseTransaction(fn);
  };
  releaseLeases: LimitStore['releaseLeases'] = (id) => this.inner.releaseLeases(id);
  ensureBucket: LimitStore['ensureBucket'] = (...a) => this.inner.ensureBucket(...a);
  take: LimitStore['take'] = (...a) => this.inner.take(...a);
}

/**
 * maxConcurrency holds across workers even when one of them cannot renew its lease: that
 * worker starts nothing, and its calls in flight keep counting for the others until they end.
 */
describe('a lapsed concurrency lease', () => {
  let db: DataSource;
  let sim: SimulatorHandle;
  const gateways: HttpUpstreamGateway[] = [];

  beforeAll(async () => {
    db = createDataSource(stackConfig(), 'barge-test');
    await db.initialize();
    sim = await startSimulator({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await sim.close();
    await db.destroy();
  });

  it('keeps counting the calls in flight of a worker that lost its lease', async () => {
    const config = configWith({
      // Leases live max(5 s, 10 refreshes): renewals every 200 ms, lapsing 5 s after the last.
      upstreams: [{ name: uniqueName('lapse'), baseUrl: sim.baseUrl, limits: { maxConcurrency: 10 } }],
      routing: { leaseRefreshMs: 200 },
    });
    const cutOff = new CutOffStore(new PgLimitStore(db));
    const a = new HttpUpstreamGateway(config, { limitStore: cutOff, workerId: uniqueName('worker-a') });
    const b = HttpUpstreamGateway.forDatabase(config, db, { workerId: uniqueName('worker-b') });
    gateways.push(a, b);

    // A takes the whole budget with ten calls that last 9 s.
    const slow = Array.from({ length: 10 }, () =>
      a.call(callOf({ body: chat('slow', { simulate: { latency_ms: 9_000 } }) })),
    );
    await waitFor('ten calls in flight', async () => sim.stats().inFlight === 10);

    // A is cut off from Postgres: it cannot renew, and its lease lapses after 5 s.
    cutOff.cut = true;
    const late = a.call(callOf({ body: chat('late-a') }));
    await new Promise((r) => setTimeout(r, 6_000));
    // B wants slots now; A's ten calls still run, so B gets none yet.
    const fromB = Array.from({ length: 10 }, () => b.call(callOf({ body: chat('b') })));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(sim.stats().inFlight).toBe(10);
    expect(sim.stats().totalRequests).toBe(10); // neither B's calls nor A's late one started

    for (const r of await Promise.all(slow)) expect(r).toMatchObject({ kind: 'http', status: 200 });
    // A's calls have ended, but A cannot say so: B still waits (A's last word was "10 in flight").
    await new Promise((r) => setTimeout(r, 500));
    expect(sim.stats().totalRequests).toBe(10);

    // A reconnects and publishes that nothing is in flight: B and A's late call go out.
    cutOff.cut = false;
    for (const r of await Promise.all([...fromB, late]))
      expect(r).toMatchObject({ kind: 'http', status: 200 });
    expect(sim.stats().totalRequests).toBe(21);
    expect(sim.stats().peakInFlight).toBeLessThanOrEqual(10);
  }, 60_000);
});
