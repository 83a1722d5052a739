import { ByteBudget } from '../../src/batches/dispatch/byte-budget';

describe('ByteBudget', () => {
  it('admits claims while they fit, first come first served', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.acquire(60);
    const order: string[] = [];
    const b = budget.acquire(50).then((release) => (order.push('b'), release));
    const c = budget.acquire(10).then((release) => (order.push('c'), release));
    await new Promise((r) => setImmediate(r));
    // c would fit, but b came first: no overtaking, so a large claim is never starved.
    expect(order).toEqual([]);
    expect(budget.queued).toBe(2);
    a();
    const [releaseB, releaseC] = await Promise.all([b, c]);
    expect(order).toEqual(['b', 'c']);
    expect(budget.inUse).toBe(60);
    releaseB();
    releaseC();
    releaseC(); // idempotent
    expect(budget.inUse).toBe(0);
  });

  it('lets a claim larger than the whole budget in alone', async () => {
    const budget = new ByteBudget(100);
    const small = await budget.acquire(10);
    let admitted = false;
    const big = budget.acquire(500).then((release) => ((admitted = true), release));
    await new Promise((r) => setImmediate(r));
    expect(admitted).toBe(false);
    small();
    (await big)();
    expect(admitted).toBe(true);
    expect(budget.inUse).toBe(0);
  });

  it('gives up waiting when aborted, and lets the next claim in', async () => {
    const budget = new ByteBudget(100);
    const held = await budget.acquire(100);
    const controller = new AbortController();
    const waiting = budget.acquire(50, controller.signal);
    const next = budget.acquire(10);
    controller.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    held();
    (await next)();
    expect(budget.inUse).toBe(0);
  });

  it('charges memory already in use at once, over the limit, and makes claims wait until it is given back', async () => {
    const budget = new ByteBudget(100);
    const release = budget.charge(150);
    budget.take(30);
    expect(budget.inUse).toBe(180);
    let admitted = false;
    const waiting = budget.acquire(10).then((r) => ((admitted = true), r));
    await new Promise((r) => setImmediate(r));
    expect(admitted).toBe(false);
    release();
    release(); // once only
    expect(budget.inUse).toBe(40); // the 30 still taken, and the waiting 10 let in at once
    (await waiting)();
    budget.give(30);
    expect(admitted).toBe(true);
    expect(budget.inUse).toBe(0);
  });

  it('grants a claim at once with tryAcquire only when it fits and nobody waits before it', async () => {
    const budget = new ByteBudget(100);
    const first = budget.tryAcquire(60);
    expect(first).not.toBeNull();
    expect(budget.tryAcquire(50)).toBeNull(); // does not fit
    const waiting = budget.acquire(50);
    expect(budget.tryAcquire(10)).toBeNull(); // fits, but the 50 waits first
    first!();
    (await waiting)();
    const alone = budget.tryAcquire(500); // larger than the budget, let in alone
    expect(budget.inUse).toBe(500);
    alone!();
    alone!();
    expect(budget.inUse).toBe(0);
  });
});
