import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { FileStore } from './file-store';
import { PeriodicRound } from '../common/periodic-round';

/** Often enough that expired files do not linger, rarely enough to cost nothing. */
const PURGE_INTERVAL_MS = 10 * 60_000;
// Arbitrary constant: the advisory lock that lets one API process purge at a time.
export const PURGE_LOCK = 73_112_027;

/**
 * Runs FileStore.purgeExpired and sweepOrphans in the API process on a timer. Several API
 * processes may run; a Postgres advisory lock makes the others skip a round.
 */
@Injectable()
export class FilePurgeScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('file-purge');
  // unref'd: a pending purge never keeps the process alive.
  private readonly rounds = new PeriodicRound(
    () => this.runOnce(),
    PURGE_INTERVAL_MS,
    (err) => this.logger.error(`purge failed: ${err.stack ?? err.message}`),
  );

  constructor(
    private readonly files: FileStore,
    private readonly db: DataSource,
  ) {}

  onApplicationBootstrap(): void {
    this.rounds.start({ immediately: false });
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.rounds.stop();
  }

  /** One round, if no other process is running one. */
  async runOnce(now = new Date()): Promise<void> {
    const session = this.db.createQueryRunner();
    try {
      const [{ locked }] = await session.query('SELECT pg_try_advisory_lock($1) AS locked', [PURGE_LOCK]);
      if (!locked) return;
      try {
        const { expired, purged } = await this.files.purgeExpired(now);
        const orphans = await this.files.sweepOrphans(now);
        if (expired + purged + orphans > 0) {
          this.logger.log(`expired ${expired} files, removed ${purged} objects and ${orphans} orphans`);
        }
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK]);
      }
    } finally {
      await session.release();
    }
  }
}
