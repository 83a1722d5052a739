import type { BatchStatus } from '../src/database/entities/batch.entity';
import type { ActivityDeps } from './deps';
import { asActivity } from './failure';

export function createStatusActivities({ batches }: ActivityDeps) {
  return {
    /** validating | in_progress -> cancelling (the workflow owns this transition); the status after. */
    markCancelling: ({ batchId }: { batchId: string }): Promise<BatchStatus> =>
      asActivity(() => batches.markCancelling(batchId)),
  };
}
