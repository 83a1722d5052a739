import type { DataSource } from 'typeorm';
import type { BatchStatus } from '../database/entities/batch.entity';
import type { BatchCensus } from './metrics';

const NON_TERMINAL = ['validating', 'in_progress', 'finalizing', 'cancelling'];

interface Seen {
  /** What counts as progress: the status and the number of recorded outcomes. */
  mark: string;
  since: number;
}

/**
 * The batch gauges, from Postgres, when Prometheus scrapes the API: batches by status, and how
 * long the least recently progressing non-terminal batch has gone without progress. Progress
 * is a status change or a new outcome; Postgres keeps no "last progress" time, so this
 * process remembers when it last saw each running batch change. A batch it has not seen before
 * counts from its latest status stamp, or from this process's start if that is later (after a
 * restart a stall shows within the alert's 10 minutes, never as a false alarm at once).
 */
export class BatchProgressCensus {
  private readonly seen = new Map<string, Seen>();
  private readonly startedAt: number;

  constructor(
    private readonly db: DataSource,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  async census(): Promise<BatchCensus> {
    const [counts, running] = await Promise.all([
      this.db.query(`SELECT status, count(*)::int AS n FROM batches GROUP BY status`) as Promise<
        { status: BatchStatus; n: number }[]
      >,
      this.db.query(
        `SELECT id, status, request_completed + request_failed AS done,
                extract(epoch FROM greatest(created_at, in_progress_at, finalizing_at, cancelling_at)) * 1000 AS stamp
           FROM batches WHERE status = ANY($1)`,
        [NON_TERMINAL],
      ) as Promise<{ id: string; status: string; done: number; stamp: string }[]>,
    ]);
    const now = this.now();
    const current = new Set<string>();
    let longest = 0;
    for (const row of running) {
      current.add(row.id);
      const mark = `${row.status}/${row.done}`;
      let seen = this.seen.get(row.id);
      if (!seen) {
        seen = { mark, since: Math.max(Number(row.stamp), this.startedAt) };
        this.seen.set(row.id, seen);
      } else if (seen.mark !== mark) {
        seen.mark = mark;
        seen.since = now;
      }
      longest = Math.max(longest, now - seen.since);
    }
    for (const id of this.seen.keys()) if (!current.has(id)) this.seen.delete(id);
    const byStatus: BatchCensus['byStatus'] = {};
    for (const { status, n } of counts) byStatus[status] = n;
    return { byStatus, longestWithoutProgressSeconds: Math.max(0, longest) / 1000 };
  }
}
