import type { BatchStatus } from '../src/database/entities/batch.entity';
import type { ActivityDeps } from './deps';
import { asActivity } from './failure';

export function createStatusActivities({ batches, metrics, logger }: ActivityDeps) {
  return {
    /** validating | in_progress -> cancelling (the workflow owns this transition); the status after. */
    markCancelling: ({ batchId }: { batchId: string }): Promise<BatchStatus> =>
      asActivity(async () => {
        const { status, changed } = await batches.markCancelling(batchId);
        if (changed) {
          metrics.transition('cancelling');
          logger.info({ batch_id: batchId }, 'batch cancelling');
        }
        return status;
      }),
  };
}
