import { DataSource } from 'typeorm';
import { createDataSource } from '../../src/database/data-source';
import { FilePurgeScheduler, PURGE_LOCK } from '../../src/files/file-purge.scheduler';
import type { FileStore } from '../../src/files/file-store';
import { stackConfig } from '../support/stack';

/** The scheduler's advisory lock: only one API process purges at a time. */
describe('FilePurgeScheduler', () => {
  let db: DataSource;
  let other: DataSource;

  beforeAll(async () => {
    [db, other] = [
      createDataSource(stackConfig(), 'test-purge-a'),
      createDataSource(stackConfig(), 'test-purge-b'),
    ];
    await Promise.all([db.initialize(), other.initialize()]);
  });
  afterAll(() => Promise.all([db.destroy(), other.destroy()]));

  it('skips a round while another process holds the purge lock, and runs once it is free', async () => {
    let rounds = 0;
    const store = {
      purgeExpired: async () => {
        rounds++;
        return { expired: 0, purged: 0 };
      },
      sweepOrphans: async () => 0,
    } as unknown as FileStore;
    const scheduler = new FilePurgeScheduler(store, db);

    // Hold the lock from another session, as a second API process mid-purge would.
    const holder = other.createQueryRunner();
    await holder.query('SELECT pg_advisory_lock($1)', [PURGE_LOCK]);
    try {
      await scheduler.runOnce();
      expect(rounds).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK]);
      await holder.release();
    }
    await scheduler.runOnce();
    expect(rounds).toBe(1);
  });
});
