import { Context } from '@temporalio/activity';
import type { FinalizePhases, FinalizeRequest } from '../src/batches/finalize/finalizer';
import type { ActivityDeps } from './deps';
import { asActivity } from './failure';

export function createFinalizeActivities({ finalizer, logger }: ActivityDeps) {
  return {
    /** Ends the batch with its output and error files (Finalizer: fenced, atomic, once). */
    finalizeBatch: (request: FinalizeRequest): Promise<{ status: string }> =>
      asActivity(async () => {
        const phases: FinalizePhases = {};
        const result = await finalizer.finalize(request, () => Context.current().heartbeat(), phases);
        logger.info(
          { batch_id: request.batchId, reason: request.reason, status: result.status, phases_ms: phases },
          `batch ${result.status}`,
        );
        return result;
      }),
  };
}
