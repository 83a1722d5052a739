import {
  ActivityCancellationType,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FinalizeReason } from '../src/batches/finalize/finalizer';
import {
  cancelBatchSignal,
  cancelUpdate,
  NOT_CANCELLABLE,
  progressQuery,
  type BatchProgress,
  type BatchWorkflowInput,
  type CarriedState,
} from './batch.definitions';
import { legacyBatchWorkflow } from './legacy-batch.workflow';
import { BatchStatusKey, ModelKey } from './search-attributes';

export * from './batch.definitions';

/**
 * One workflow per batch (workflow id = batch id). Only ids and counters pass through
 * Temporal; requests and results live in MinIO and Postgres.
 *
 *   validateInput -> dispatchChunk x N (a sliding window) -> finalizeBatch
 *
 * - Cancel is an Update (the API's) or Temporal's own cancellation (the Web UI's); both stop
 *   the window, let chunks in flight record what they finished, and finalize with the rest
 *   as batch_cancelled. A cancel that arrives while finalize runs waits for it: the batch ends
 *   as finalize decided. Cancel wins over "every chunk settled" when both happen at once.
 * - The completion window (an absolute expiresAt, kept across continue-as-new) ends in
 *   `expired`, the unanswered requests as batch_expired.
 * - Continue-as-new, when Temporal suggests it, hands the chunks in flight to the next run,
 *   which dispatches them at once: the window never drains. (The chunk activities of the old
 *   run drain and give their chunk's claim to the new attempts: no request is sent twice.)
 * - A chunk that fails for good (a deterministic failure, or infrastructure failing beyond
 *   its retry bound) ends the batch `failed`, with its finished results in the output file.
 *
 * Versioning: runs started by the first release replay the first release's code
 * (legacy-batch.workflow.ts) behind `patched(V2)`.
 */

const V2 = 'barge-batch-v2';

/** Deterministic failures: retrying them cannot help (src/common/failures.ts). */
const NON_RETRYABLE = ['BatchNotFound', 'InvalidBatchState', 'PoisonInput'];

/**
 * Infrastructure faults retry with backoff within these bounds; past them the batch fails
 * (chunks: about 25 minutes of a failing dependency; finalize: about 45 minutes, after which
 * the reconciler keeps trying).
 */
const CHUNK_RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 30,
  nonRetryableErrorTypes: NON_RETRYABLE,
} as const;
const BOOKKEEPING_RETRY = { ...CHUNK_RETRY, maximumAttempts: 50 } as const;

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: BOOKKEEPING_RETRY,
});

/** Validation is waited for when cancelled: finalize then sees the chunk plan it wrote, if any. */
const validation = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: BOOKKEEPING_RETRY,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

export async function batchWorkflow(input: BatchWorkflowInput): Promise<string> {
  if (!patched(V2)) return legacyBatchWorkflow(input);
  return runBatch(input);
}

async function runBatch(input: BatchWorkflowInput): Promise<string> {
  const { batchId, expiresAt } = input;
  const { dispatchChunk } = proxyActivities<Activities>({
    taskQueue: input.upstreamTaskQueue,
    startToCloseTimeout: '48 hours',
    // A killed worker is noticed within this; the chunk then resumes on another worker.
    heartbeatTimeout: '20 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: CHUNK_RETRY,
  });
  // A first-release run that continued as new hands over its position only.
  const carried: CarriedState | undefined =
    input.carried ??
    (input.progress && {
      ...input.progress,
      pending: [],
      window: input.window,
      cancelRequested: false,
    });
  const progress: BatchProgress = {
    phase: carried ? 'in_progress' : 'validating',
    chunkCount: carried?.chunkCount ?? 0,
    nextChunk: carried?.nextChunk ?? 0,
    chunksInFlight: 0,
    cancelRequested: carried?.cancelRequested ?? false,
  };
  let window = carried?.window ?? input.window;
  let pending = carried?.pending ?? [];

  setHandler(
    cancelUpdate,
    async () => {
      progress.cancelRequested = true;
      return { status: await bookkeeping.markCancelling({ batchId }) };
    },
    {
      validator: () => {
        if (progress.phase === 'finalizing' || progress.phase === 'done') {
          throw ApplicationFailure.nonRetryable(
            progress.phase === 'finalizing'
              ? 'Cannot cancel a batch that is finalizing: its results are being written.'
              : 'The batch has ended.',
            NOT_CANCELLABLE,
          );
        }
      },
    },
  );
  setHandler(cancelBatchSignal, () => void (progress.cancelRequested = true));
  setHandler(progressQuery, () => progress);

  const msLeft = () => expiresAt - Date.now();
  // Whatever work is running, so a cancelled workflow can wait for it before finalizing.
  let current: Promise<unknown> = Promise.resolve();
  // The chunk activities in flight (their promises settle once each has acknowledged or ended).
  const inFlight = new Map<number, Promise<void>>();
  let chunks: CancellationScope | undefined;
  /** Stops every chunk in flight and waits for each to record what it finished. */
  const stopChunks = async (): Promise<void> => {
    chunks?.cancel();
    await Promise.all(inFlight.values());
  };

  /**
   * Ends the batch, once no chunk is in flight any more. Never cancellable: a cancel arriving
   * meanwhile waits for it.
   */
  const finalize = (reason: FinalizeReason, failure?: { code: string; message: string }) =>
    CancellationScope.nonCancellable(async () => {
      await stopChunks();
      if (reason === 'cancelled') {
        await bookkeeping.markCancelling({ batchId });
        upsertSearchAttributes([{ key: BatchStatusKey, value: 'cancelling' }]);
      } else if (reason === 'completed') {
        upsertSearchAttributes([{ key: BatchStatusKey, value: 'finalizing' }]);
      }
      progress.phase = 'finalizing';
      const { status } = await bookkeeping.finalizeBatch({ batchId, reason, failure });
      upsertSearchAttributes([{ key: BatchStatusKey, value: status }]);
      progress.phase = 'done';
      return status;
    });

  /** Runs `work` until it ends, the batch is cancelled, or the completion window closes. */
  async function untilStopped<T>(work: () => Promise<T>): Promise<{ done: T } | { stopped: FinalizeReason }> {
    if (progress.cancelRequested) return { stopped: 'cancelled' };
    if (msLeft() <= 0) return { stopped: 'expired' };
    const scope = new CancellationScope();
    let settled = false;
    const running = scope.run(work);
    current = running.then(
      () => void (settled = true),
      () => void (settled = true),
    );
    await condition(() => settled || progress.cancelRequested, msLeft());
    // Cancel wins, also when the work settled at the same moment.
    if (!progress.cancelRequested && settled) return { done: await running };
    scope.cancel();
    await running.catch((err) => {
      if (!isCancellation(err)) throw err;
    });
    return { stopped: progress.cancelRequested ? 'cancelled' : 'expired' };
  }

  type Dispatched =
    { kind: 'done' } | { kind: 'continue'; inFlight: number[] } | { kind: 'failed'; message: string };

  /** The sliding window of chunk activities: workflow state grows with the window, not the batch. */
  async function dispatchAll(): Promise<Dispatched> {
    const scope = new CancellationScope();
    chunks = scope;
    let failure: unknown;
    const launch = (idx: number): void => {
      const chunk = scope
        .run(() => dispatchChunk({ batchId, chunkIndex: idx }))
        .then(
          () => void inFlight.delete(idx),
          (err) => {
            inFlight.delete(idx);
            if (!isCancellation(err)) failure ??= err;
          },
        );
      inFlight.set(idx, chunk);
    };
    for (const idx of pending) launch(idx);
    pending = [];
    for (;;) {
      if (failure !== undefined) {
        // One chunk failed for good: stop the others (they record what they finished).
        await stopChunks();
        return { kind: 'failed', message: messageOf(failure) };
      }
      // Cancelled or expired: launch nothing more (the caller stops what is in flight).
      if (scope.consideredCancelled || progress.cancelRequested || msLeft() <= 0) return { kind: 'done' };
      if (workflowInfo().continueAsNewSuggested) return { kind: 'continue', inFlight: [...inFlight.keys()] };
      while (inFlight.size < window && progress.nextChunk < progress.chunkCount) launch(progress.nextChunk++);
      progress.chunksInFlight = inFlight.size;
      if (inFlight.size === 0) return { kind: 'done' };
      await Promise.race(inFlight.values());
    }
  }

  try {
    if (!carried) {
      const validated = await untilStopped(() => validation.validateInput({ batchId }));
      if ('stopped' in validated) return await finalize(validated.stopped);
      const result = validated.done;
      if (!result.ok) {
        progress.phase = 'done';
        upsertSearchAttributes([{ key: BatchStatusKey, value: 'failed' }]);
        return 'failed';
      }
      progress.chunkCount = result.chunkCount;
      progress.phase = 'in_progress';
      window = windowFor(input, result.total, result.chunkCount, result.capacity);
      if (result.model) upsertSearchAttributes([{ key: ModelKey, value: result.model }]);
      // Cancelled while validation was finishing: every request becomes batch_cancelled.
      if (!result.stillValidating) return await finalize('cancelled');
      upsertSearchAttributes([{ key: BatchStatusKey, value: 'in_progress' }]);
    }

    const dispatched = await untilStopped(dispatchAll);
    if ('stopped' in dispatched) return await finalize(dispatched.stopped);
    const outcome = dispatched.done;
    if (outcome.kind === 'failed') {
      return await finalize('failed', {
        code: 'batch_failed',
        message: `The batch could not be completed: ${outcome.message}`,
      });
    }
    if (outcome.kind === 'continue') {
      // A cancel being handled finishes first; one that arrived, or the window's end, is
      // checked now: then this run finalizes (after its chunks in flight have stopped).
      await condition(allHandlersFinished);
      if (progress.cancelRequested) return await finalize('cancelled');
      if (msLeft() <= 0) return await finalize('expired');
      return await continueAsNew<typeof batchWorkflow>({
        ...input,
        progress: undefined,
        carried: {
          chunkCount: progress.chunkCount,
          nextChunk: progress.nextChunk,
          pending: outcome.inFlight,
          window,
          cancelRequested: progress.cancelRequested,
        },
      });
    }
    return await finalize(progress.cancelRequested ? 'cancelled' : msLeft() <= 0 ? 'expired' : 'completed');
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

/**
 * Chunks in flight: enough for about twice the requests the upstreams take in flight, so one
 * chunk's slow tail never idles their capacity, within [window, maxWindow].
 */
function windowFor(input: BatchWorkflowInput, total: number, chunkCount: number, capacity: number): number {
  const perChunk = chunkCount > 0 ? total / chunkCount : 1;
  const wanted = Math.ceil((2 * capacity) / Math.max(1, perChunk)) + 2;
  return Math.max(input.window, Math.min(input.maxWindow ?? input.window, wanted));
}

function messageOf(error: unknown): string {
  let e: unknown = error;
  // An ActivityFailure wraps the activity's own failure: that one says what went wrong.
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(error);
}
