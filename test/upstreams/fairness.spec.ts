import { FairQueue } from '../../src/upstreams/fair-queue';
import { fairShares } from '../../src/upstreams/lease-keeper';

describe('fair queue', () => {
  const drainAll = (queue: FairQueue<string>, eligible: (item: string) => boolean = () => true): string[] => {
    const out: string[] = [];
    for (let item = queue.take(eligible); item !== undefined; item = queue.take(eligible)) out.push(item);
    return out;
  };

  it('goes round-robin over tenants, then over each tenant batches, FIFO within a batch', () => {
    const queue = new FairQueue<string>();
    for (let i = 1; i <= 4; i++) queue.push('A', 'a1', `a1-${i}`);
    queue.push('A', 'a2', 'a2-1');
    queue.push('A', 'a2', 'a2-2');
    queue.push('B', 'b1', 'b1-1');
    queue.push('B', 'b1', 'b1-2');
    expect(queue.size).toBe(8);
    expect(drainAll(queue)).toEqual(['a1-1', 'b1-1', 'a2-1', 'b1-2', 'a1-2', 'a2-2', 'a1-3', 'a1-4']);
    expect(queue.size).toBe(0);
  });

  it('skips cancelled requests and batches whose head cannot start yet', () => {
    const queue = new FairQueue<string>();
    const cancel = queue.push('A', 'a', 'a-1');
    queue.push('A', 'a', 'a-2');
    queue.push('B', 'b', 'b-1');
    expect(cancel()).toBe(true);
    expect(cancel()).toBe(false);
    expect(queue.size).toBe(2);
    expect(queue.take((item) => item.startsWith('b'))).toBe('b-1');
    expect(drainAll(queue)).toEqual(['a-2']);
  });
});

describe('fair shares of a concurrency limit', () => {
  const split = (budget: number, demands: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      fairShares(
        budget,
        Object.entries(demands).map(([id, demand]) => ({ id, demand })),
      ),
    );

  it('fills the smallest demands first and splits the rest evenly', () => {
    expect(split(10, { a: 2, b: 100, c: 100 })).toEqual({ a: 2, b: 4, c: 4 });
    expect(split(10, { a: 100, b: 100, c: 100 })).toEqual({ a: 4, b: 3, c: 3 });
  });

  it('gives what no demand claims to the workers that have demand, and nothing to idle ones', () => {
    expect(split(16, { a: 1, b: 0 })).toEqual({ a: 16, b: 0 });
    expect(split(16, { a: 1, b: 3, c: 0 })).toEqual({ a: 7, b: 9, c: 0 });
    expect(split(16, { a: 0, b: 0 })).toEqual({ a: 0, b: 0 });
  });

  it('never hands out more than the budget', () => {
    for (const budget of [1, 2, 3, 7, 64]) {
      const cases: Record<string, number>[] = [
        { a: 1, b: 1, c: 1 },
        { a: 50, b: 1 },
        { a: 0, b: 9, c: 9, d: 9 },
      ];
      for (const demands of cases) {
        const total = Object.values(split(budget, demands)).reduce((s, n) => s + n, 0);
        expect(total).toBe(budget);
      }
    }
  });
});
