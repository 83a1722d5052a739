import type { DataSource } from 'typeorm';
import type { Reconciler } from '../batches/reconcile/reconciler';
import { ResultIndex } from '../batches/store/result-index';
import type { WorkRepository } from '../batches/store/work.repository';
import { FILES_PREFIX } from '../files/file-store';
import type { Logger } from '../observability/logger';
import type { ObjectStorage } from '../storage/object-storage';
import { PeriodicRound } from '../common/periodic-round';

// Arbitrary constant: the advisory lock that lets one worker process run maintenance at a time.
export const MAINTENANCE_LOCK = 73_112_028;
/** A multipart upload this old belongs to a writer that died. */
const INCOMPLETE_UPLOAD_AGE_MS = 60 * 60_000;

/**
 * The worker's periodic jobs, run by one worker at a time (a Postgres advisory lock makes the
 * others skip a round): the reconciler, then the sweeps of what a crash can leave behind
 * (working rows of ended batches, incomplete multipart uploads). Orphan objects are swept by
 * the API's file purge.
 */
export class Maintenance {
  private readonly rounds: PeriodicRound;

  constructor(
    private readonly db: DataSource,
    private readonly reconciler: Reconciler,
    private readonly work: WorkRepository,
    private readonly storage: ObjectStorage,
    intervalMs: number,
    private readonly logger: Logger,
  ) {
    this.rounds = new PeriodicRound(
      () => this.runOnce(),
      intervalMs,
      (err) => this.logger.error({ err }, `maintenance round failed: ${err.message}`),
    );
  }

  start(): void {
    this.rounds.start({ immediately: true });
  }

  stop(): Promise<void> {
    return this.rounds.stop();
  }

  /** One round, unless another worker is running one. */
  async runOnce(now = new Date()): Promise<boolean> {
    const session = this.db.createQueryRunner();
    try {
      const [{ locked }] = await session.query('SELECT pg_try_advisory_lock($1) AS locked', [
        MAINTENANCE_LOCK,
      ]);
      if (!locked) return false;
      try {
        const report = await this.reconciler.reconcileOnce();
        for (const id of report.started) {
          this.logger.warn({ batch_id: id }, `reconciler: started the missing workflow of ${id}`);
        }
        for (const f of report.finalized) {
          this.logger.warn(
            { batch_id: f.id, workflow: f.workflow, status: f.status },
            `reconciler: ${f.id} had no running workflow (${f.workflow}); ended it ${f.status}`,
          );
        }
        let swept = 0;
        for (const id of await this.work.endedWithLeftovers()) {
          await this.work.deleteWorkingData(id);
          swept++;
        }
        // Outcome rows outlive their batch while its files exist (result-index.ts).
        const gone = await new ResultIndex(this.db).sweepGone(now);
        const uploads = await this.storage.sweepIncompleteUploads(
          FILES_PREFIX,
          new Date(now.getTime() - INCOMPLETE_UPLOAD_AGE_MS),
        );
        if (swept + uploads + gone > 0) {
          this.logger.info(
            { swept_batches: swept, swept_uploads: uploads, swept_results: gone },
            `swept the working rows of ${swept} ended batches, the results of ${gone} whose files are gone, and ${uploads} incomplete uploads`,
          );
        }
        return true;
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [MAINTENANCE_LOCK]);
      }
    } finally {
      await session.release();
    }
  }
}
