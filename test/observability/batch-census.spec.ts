import type { DataSource } from 'typeorm';
import { BatchProgressCensus } from '../../src/observability/batch-census';
import { Metrics } from '../../src/observability/metrics';
import { parseExposition, total } from '../support/prometheus';

/** A DataSource answering the census's two queries from a list of batches. */
function fakeDb(batches: { id: string; status: string; done: number; stamp: number }[]): DataSource {
  return {
    query: async (sql: string) => {
      if (sql.includes('GROUP BY status')) {
        const counts = new Map<string, number>();
        for (const b of batches) counts.set(b.status, (counts.get(b.status) ?? 0) + 1);
        return [...counts].map(([status, n]) => ({ status, n }));
      }
      return batches
        .filter((b) => ['validating', 'in_progress', 'finalizing', 'cancelling'].includes(b.status))
        .map((b) => ({ ...b, stamp: String(b.stamp) }));
    },
  } as unknown as DataSource;
}

describe('the batch census', () => {
  it('reports batches by status, every status present, and the longest time without progress', async () => {
    let clock = 1_000_000;
    const batches = [
      { id: 'a', status: 'in_progress', done: 10, stamp: 900_000 },
      { id: 'b', status: 'validating', done: 0, stamp: 1_000_000 },
      { id: 'c', status: 'completed', done: 5, stamp: 0 },
    ];
    const census = new BatchProgressCensus(fakeDb(batches), () => clock);
    const metrics = new Metrics(undefined, { now: () => clock });
    metrics.watchBatches(() => census.census());
    const read = async () => parseExposition(await metrics.scrape());

    let s = await read();
    expect(total(s, 'barge_batches', { status: 'in_progress' })).toBe(1);
    expect(total(s, 'barge_batches', { status: 'completed' })).toBe(1);
    expect(s.filter((x) => x.name === 'barge_batches').map((x) => x.labels.status)).toHaveLength(8);
    expect(total(s, 'barge_batches', { status: 'cancelled' })).toBe(0);
    // First seen: counted from this process's start (later than a's status stamp).
    expect(total(s, 'barge_batch_longest_without_progress_seconds')).toBe(0);

    clock += 600_000;
    batches[1].status = 'in_progress'; // b progressed (its status changed); a did not
    s = await read();
    expect(total(s, 'barge_batch_longest_without_progress_seconds')).toBe(600);

    clock += 5_000;
    batches[0].done = 11; // a progressed too
    s = await read();
    expect(total(s, 'barge_batch_longest_without_progress_seconds')).toBe(5);

    batches[0].status = 'completed';
    batches[1].status = 'completed';
    clock += 5_000;
    s = await read();
    expect(total(s, 'barge_batches', { status: 'completed' })).toBe(3);
    expect(total(s, 'barge_batch_longest_without_progress_seconds')).toBe(0);
  });

  it('counts a batch first seen after this process started from its own status stamp', async () => {
    let clock = 1_000_000;
    const batches: { id: string; status: string; done: number; stamp: number }[] = [];
    const census = new BatchProgressCensus(fakeDb(batches), () => clock);
    clock += 60_000;
    batches.push({ id: 'late', status: 'validating', done: 0, stamp: 1_030_000 });
    expect((await census.census()).longestWithoutProgressSeconds).toBe(30);
  });
});
