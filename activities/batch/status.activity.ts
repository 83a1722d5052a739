import { BatchRepository } from '../../src/batches/store/batch.repository';
import type { ActivityDeps } from '../deps';

export function createStatusActivities({ db }: ActivityDeps) {
  const batches = new BatchRepository(db);
  return {
    /** Cancellation that did not come through the API (e.g. the Temporal Web UI). */
    async markCancelling({ batchId }: { batchId: string }): Promise<void> {
      await batches.markCancelling(batchId);
    },
  };
}
