import type { BatchRecord } from '../../database/entities/batch.entity';
import type { Metrics } from '../../observability/metrics';
import type { FinalizeRequest } from '../finalize/finalizer';

/**
 * Keeps Postgres and Temporal agreeing. A batch is non-terminal in Postgres for as long as
 * its workflow runs; when that is not so, this finishes the job:
 * - no workflow, batch still `validating`: the API wrote the row and then died (or its start
 *   failed and so did removing the row): the workflow is started now, idempotently;
 * - workflow closed (terminated from the Web UI, failed, timed out) or missing later on: the
 *   batch is finalized here with its partial results: `cancelled` if it was being cancelled,
 *   else `failed`, with why in its `errors`.
 * Plain code over small interfaces; the worker runs it periodically under a lock
 * (src/worker/maintenance.ts).
 */

export interface ReconcileDeps {
  /** Non-terminal batches created before `before`, oldest first. */
  candidates(before: Date, limit: number): Promise<BatchRecord[]>;
  /** The workflow's latest run status ('RUNNING', 'TERMINATED', ...) or null when there is none. */
  workflowStatus(batchId: string): Promise<string | null>;
  startWorkflow(batch: BatchRecord): Promise<void>;
  finalize(request: FinalizeRequest): Promise<{ status: string }>;
  now(): Date;
}

export interface ReconcileReport {
  checked: number;
  started: string[];
  finalized: { id: string; status: string; workflow: string }[];
}

const PER_ROUND = 100;

export class Reconciler {
  constructor(
    private readonly deps: ReconcileDeps,
    /** A batch younger than this is left alone: its workflow may be starting right now. */
    private readonly graceMs: number,
    private readonly metrics?: Metrics,
  ) {}

  async reconcileOnce(): Promise<ReconcileReport> {
    const before = new Date(this.deps.now().getTime() - this.graceMs);
    const report: ReconcileReport = { checked: 0, started: [], finalized: [] };
    for (const batch of await this.deps.candidates(before, PER_ROUND)) {
      report.checked++;
      const workflow = await this.deps.workflowStatus(batch.id);
      if (workflow === 'RUNNING') continue;
      if (workflow === null && batch.status === 'validating') {
        await this.deps.startWorkflow(batch);
        this.metrics?.reconciled.labels('started').inc();
        report.started.push(batch.id);
        continue;
      }
      const gone = workflow === null ? 'is missing' : `ended ${workflow.toLowerCase().replace(/_/g, ' ')}`;
      const { status } = await this.deps.finalize(
        batch.status === 'cancelling'
          ? { batchId: batch.id, reason: 'cancelled' }
          : {
              batchId: batch.id,
              reason: 'failed',
              failure: {
                code: 'batch_failed',
                message: `The batch's workflow ${gone} before the batch did; the results it had are in the output and error files.`,
              },
            },
      );
      this.metrics?.reconciled.labels('finalized').inc();
      report.finalized.push({ id: batch.id, status, workflow: workflow ?? 'MISSING' });
    }
    return report;
  }
}
