import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FinalizeReason } from '../src/batches/finalize/finalizer';
import { BatchStatusKey, ModelKey } from './search-attributes';
import {
  cancelBatchSignal,
  cancelUpdate,
  progressQuery,
  type BatchProgress,
  type BatchWorkflowInput,
} from './batch.definitions';

/**
 * The batch workflow of Barge's first release, unchanged, for the runs it started: a run
 * replays against the code that wrote its history (see batch.workflow.ts, `patched`). Its
 * continue-as-new starts a run of the current code. Delete this file (and the patch check)
 * once no first-release run is left: 48 hours after the release that added it at most.
 *
 * The only addition is the cancel Update's handler, so the API can cancel these runs too: a
 * handler issues no commands until an Update invokes it, and no first-release history holds
 * one, so their replay is unaffected.
 */

// Infrastructure faults are retried until they heal; per-request upstream faults never fail
// an activity (the chunk records them as outcomes).
const RETRY = { initialInterval: '1 second', maximumInterval: '1 minute' } as const;

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: RETRY,
});

export async function legacyBatchWorkflow(input: BatchWorkflowInput): Promise<string> {
  const { batchId, expiresAt } = input;
  const { dispatchChunk } = proxyActivities<Activities>({
    taskQueue: input.upstreamTaskQueue,
    startToCloseTimeout: '48 hours',
    // A killed worker is noticed within this; the chunk then resumes on another worker.
    heartbeatTimeout: '20 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: RETRY,
  });
  const progress: BatchProgress = {
    phase: input.progress ? 'in_progress' : 'validating',
    chunkCount: input.progress?.chunkCount ?? 0,
    nextChunk: input.progress?.nextChunk ?? 0,
    chunksInFlight: 0,
    cancelRequested: false,
  };
  setHandler(cancelBatchSignal, () => void (progress.cancelRequested = true));
  setHandler(cancelUpdate, async () => {
    progress.cancelRequested = true;
    return { status: await bookkeeping.markCancelling({ batchId }) };
  });
  setHandler(progressQuery, () => progress);

  const msLeft = () => expiresAt - Date.now();
  // Whatever work is running, so a cancelled workflow can wait for it before finalizing.
  let current: Promise<unknown> = Promise.resolve();

  const finalize = async (reason: FinalizeReason) => {
    if (reason === 'cancelled') {
      await bookkeeping.markCancelling({ batchId });
      upsertSearchAttributes([{ key: BatchStatusKey, value: 'cancelling' }]);
    } else if (reason === 'completed') {
      upsertSearchAttributes([{ key: BatchStatusKey, value: 'finalizing' }]);
    }
    progress.phase = 'finalizing';
    const { status } = await bookkeeping.finalizeBatch({ batchId, reason });
    upsertSearchAttributes([{ key: BatchStatusKey, value: status }]);
    progress.phase = 'done';
    return status;
  };

  /** Runs `work` until it ends, the batch is cancelled, or the completion window closes. */
  async function untilStopped<T>(work: () => Promise<T>): Promise<{ done: T } | { stopped: FinalizeReason }> {
    const scope = new CancellationScope();
    let settled = false;
    const running = scope.run(work);
    current = running.then(
      () => void (settled = true),
      () => void (settled = true),
    );
    if (msLeft() > 0) await condition(() => settled || progress.cancelRequested, msLeft());
    if (settled) return { done: await running };
    scope.cancel();
    await running.catch((err) => {
      if (!isCancellation(err)) throw err;
    });
    return { stopped: progress.cancelRequested ? 'cancelled' : 'expired' };
  }

  /** A sliding window of chunk activities: workflow state grows with the window, not the batch. */
  async function dispatchAll(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    while (progress.nextChunk < progress.chunkCount || inFlight.size > 0) {
      while (
        inFlight.size < input.window &&
        progress.nextChunk < progress.chunkCount &&
        !workflowInfo().continueAsNewSuggested
      ) {
        const chunk: Promise<void> = dispatchChunk({ batchId, chunkIndex: progress.nextChunk++ }).then(
          () => void inFlight.delete(chunk),
          (err) => {
            inFlight.delete(chunk);
            failure ??= err;
          },
        );
        inFlight.add(chunk);
      }
      progress.chunksInFlight = inFlight.size;
      if (inFlight.size === 0) break; // continue-as-new suggested and the window has drained
      await Promise.race(inFlight);
      if (failure !== undefined) {
        await Promise.all(inFlight);
        throw failure;
      }
    }
    progress.chunksInFlight = 0;
  }

  try {
    if (!input.progress) {
      const validated = await untilStopped(() => bookkeeping.validateInput({ batchId }));
      if ('stopped' in validated) return await finalize(validated.stopped);
      const result = validated.done;
      if (!result.ok) {
        upsertSearchAttributes([{ key: BatchStatusKey, value: 'failed' }]);
        return 'failed';
      }
      progress.chunkCount = result.chunkCount;
      progress.phase = 'in_progress';
      if (result.model) upsertSearchAttributes([{ key: ModelKey, value: result.model }]);
      // Cancelled while validation was finishing: every request becomes batch_cancelled.
      if (!result.stillValidating) return await finalize('cancelled');
      upsertSearchAttributes([{ key: BatchStatusKey, value: 'in_progress' }]);
    }

    const dispatched = await untilStopped(dispatchAll);
    if ('stopped' in dispatched) return await finalize(dispatched.stopped);
    if (progress.nextChunk < progress.chunkCount) {
      // History is getting long: start afresh with the same clock and position.
      return await continueAsNew<(input: BatchWorkflowInput) => Promise<string>>({
        ...input,
        progress: { chunkCount: progress.chunkCount, nextChunk: progress.nextChunk },
      });
    }
    return await finalize('completed');
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Temporal's own cancellation (Web UI, CLI): the same outcome as the API's cancel, once
    // the chunks in flight have acknowledged it and recorded what they finished.
    return await CancellationScope.nonCancellable(async () => {
      await current;
      return finalize('cancelled');
    });
  }
}
