import type { DataSource } from 'typeorm';
import { connectDatabase } from '../../src/database/data-source';
import { systemClock } from '../../src/upstreams/clock';
import { LeaseKeeper, type LeasedScope } from '../../src/upstreams/lease-keeper';
import { PgLimitStore, type TakeRequest } from '../../src/upstreams/limit-store';
import { stackConfig } from '../support/stack';
import { cleanLimitTables, uniqueName } from './support';

/** The shared state of the limits, statement by statement, against the test Postgres. */
describe('shared limit tables', () => {
  let db: DataSource;
  let store: PgLimitStore;

  beforeAll(async () => {
    db = await connectDatabase(stackConfig(), 'test-upstreams');
    store = new PgLimitStore(db);
  });

  afterAll(async () => {
    await cleanLimitTables(db);
    await db.destroy();
  });

  const take = (
    requests: Partial<TakeRequest['requests']>,
    tokens: Partial<TakeRequest['tokens']> = {},
  ): TakeRequest => ({
    requests: { capacity: 0, perSecond: 0, want: 0, ...requests },
    tokens: { capacity: 0, perSecond: 0, want: 0, need: 0, adjust: 0, ...tokens },
  });

  describe('rate buckets', () => {
    it('start full and grant whole requests only when both dimensions fit', async () => {
      const scope = uniqueName('bucket');
      await store.ensureBucket(scope, 3, 100);
      const slow = { capacity: 3, perSecond: 0.0001 };
      const tokens = { capacity: 100, perSecond: 0.0001 };
      expect(
        await store.take(scope, take({ ...slow, want: 2 }, { ...tokens, want: 60, need: 30 })),
      ).toMatchObject({
        requests: 2,
        tokens: 60,
      });
      // One request left but only 40 tokens: nothing is taken.
      const refused = await store.take(scope, take({ ...slow, want: 1 }, { ...tokens, want: 50, need: 50 }));
      expect(refused).toMatchObject({ requests: 0, tokens: 0 });
      expect(refused.requestsLeft).toBeCloseTo(1, 2);
      expect(refused.tokensLeft).toBeCloseTo(40, 2);
      // A second ensureBucket does not refill it.
      await store.ensureBucket(scope, 3, 100);
      expect(await store.take(scope, take({ ...slow, want: 5 }))).toMatchObject({ requests: 1 });
    });

    it('let a request larger than the capacity through from a full bucket, into debt that usage repays', async () => {
      const scope = uniqueName('bucket');
      await store.ensureBucket(scope, 0, 100);
      const tokens = { capacity: 100, perSecond: 0.0001 };
      expect(await store.take(scope, take({}, { ...tokens, want: 250, need: 250 }))).toMatchObject({
        tokens: 250,
      });
      const inDebt = await store.take(scope, take({}, { ...tokens, want: 10, need: 10 }));
      expect(inDebt.tokens).toBe(0);
      expect(inDebt.tokensLeft).toBeCloseTo(-150, 1);
      // The upstream reported 50 tokens, not 250: the 200 come back.
      const repaid = await store.take(scope, take({}, { ...tokens, want: 10, need: 10, adjust: 200 }));
      expect(repaid.tokens).toBe(10);
      expect(repaid.tokensLeft).toBeCloseTo(40, 1);
    });

    it('refill with time', async () => {
      const scope = uniqueName('bucket');
      await store.ensureBucket(scope, 2, 0);
      const rate = { capacity: 2, perSecond: 20 };
      expect(await store.take(scope, take({ ...rate, want: 2 }))).toMatchObject({ requests: 2 });
      await new Promise((r) => setTimeout(r, 150));
      expect(await store.take(scope, take({ ...rate, want: 2 }))).toMatchObject({ requests: 2 });
    });

    it('never grant more than the bucket holds to concurrent takers', async () => {
      const scope = uniqueName('bucket');
      await store.ensureBucket(scope, 5, 0);
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          store.take(scope, take({ capacity: 5, perSecond: 0.0001, want: 1 })),
        ),
      );
      expect(results.reduce((sum, r) => sum + r.requests, 0)).toBe(5);
    });
  });

  describe('concurrency leases', () => {
    /** A scope with a settable demand and in-flight count. */
    class Scope implements LeasedScope {
      granted = 0;
      held = 0;
      inFlight = 0;
      wanted = 0;
      constructor(
        readonly key: string,
        readonly maxConcurrency: number,
      ) {}
      demand(): number {
        return this.wanted;
      }
      callsUntil(now: number): number {
        return now;
      }
      lowerGrant(granted: number): void {
        this.granted = Math.min(this.granted, granted);
      }
      applyGrant(granted: number, held: number): void {
        this.granted = granted;
        this.held = held;
      }
    }

    it('move slots between workers without their sum ever exceeding the limit', async () => {
      const key = uniqueName('lease');
      const ignore = (): void => undefined;
      const keeperA = new LeaseKeeper(store, `${key}-worker-a`, 60_000, systemClock, ignore);
      const keeperB = new LeaseKeeper(store, `${key}-worker-b`, 60_000, systemClock, ignore);
      const a = new Scope(key, 4);
      const b = new Scope(key, 4);
      keeperA.register(a);
      keeperB.register(b);
      try {
        a.wanted = 10;
        await keeperA.rebalanceNow();
        expect(a.granted).toBe(4);
        a.inFlight = 4;

        b.wanted = 10;
        await keeperB.rebalanceNow();
        expect(b.granted).toBe(0);

        // A's fair share is now 2, but its 4 requests in flight still count as held.
        await keeperA.rebalanceNow();
        expect([a.granted, a.held]).toEqual([2, 4]);
        await keeperB.rebalanceNow();
        expect(b.granted).toBe(0);

        a.inFlight = 2;
        await keeperA.rebalanceNow();
        expect([a.granted, a.held]).toEqual([2, 2]);
        await keeperB.rebalanceNow();
        expect(b.granted).toBe(2);

        // A goes idle: B may have everything once A has said so.
        a.wanted = 0;
        a.inFlight = 0;
        await keeperA.rebalanceNow();
        await keeperB.rebalanceNow();
        expect([a.granted, b.granted]).toEqual([0, 4]);
      } finally {
        await Promise.all([keeperA.close(), keeperB.close()]);
      }
      expect(await db.query(`SELECT * FROM upstream_concurrency_leases WHERE scope = $1`, [key])).toEqual([]);
    });
  });
});
