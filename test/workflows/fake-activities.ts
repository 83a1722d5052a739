import { ApplicationFailure, CancelledFailure, CompleteAsyncError, Context } from '@temporalio/activity';
import type { Activities } from '../../activities';
import { asActivity } from '../../activities/failure';
import type { ProbeResult } from '../../activities/probe.activities';
import type { ValidationResult } from '../../activities/validate.activity';
import type { ChunkReport } from '../../src/batches/dispatch/chunk-run';
import type { FinalizeRequest } from '../../src/batches/finalize/finalizer';
import type { BatchStatus } from '../../src/database/entities/batch.entity';

/**
 * Mocked activities for workflow tests: the names and shapes of activities/index.ts's
 * createActivities, with scripted behaviour per batch and a log of every call, so a test can
 * say what happened in which order (a sequence number is shared by starts and ends).
 */

export type ActivityName = 'validateInput' | 'dispatchChunk' | 'finalizeBatch' | 'markCancelling';

export interface ActivityCall {
  activity: ActivityName;
  batchId: string;
  /** The workflow run that scheduled it (continue-as-new starts a new run). */
  runId: string;
  attempt: number;
  chunkIndex?: number;
  finalize?: FinalizeRequest;
  /** Position of the start in the log of all starts and ends. */
  startSeq: number;
  /** The test server's clock when the activity started. */
  startedAt: number;
  /** How it ended; undefined while it runs. */
  end?: {
    seq: number;
    kind: 'returned' | 'failed' | 'cancelled';
    /** For a cancellation: why core cancelled it (cancelRequested: the workflow asked; notFound: its run closed). */
    reason?: 'cancelRequested' | 'notFound' | 'other';
  };
}

/** Opened once by the test; activities waiting on it go on. */
export class Gate {
  open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
}

/** What a scripted activity body can do while it runs. */
export interface Running {
  call: ActivityCall;
  /** Heartbeats until the activity is cancelled, then (after `acknowledgeAfterMs`) rethrows the cancellation. */
  untilCancelled(options?: { acknowledgeAfterMs?: number }): Promise<never>;
  /** Waits for `gate` to open, without heartbeats (it learns of no cancellation). */
  until(gate: Gate): Promise<void>;
  /**
   * Leaves the activity open and silent: no result, no heartbeat, so it learns nothing (its
   * heartbeat timeout is 20 s; a scenario ends well before). The test server turns every
   * heartbeat that lands during a workflow task into one more workflow task, and mishandles a
   * continue-as-new such a heartbeat races: chunks in flight at continue-as-new park instead.
   */
  park(): Promise<never>;
}

export interface FakeBatch {
  /** What validateInput answers (default: ok, `chunkCount` chunks, still validating). */
  validation?: ValidationResult;
  chunkCount?: number;
  onValidate?(run: Running): Promise<void>;
  /** Runs for each dispatchChunk attempt; its report (if any) is the activity's result. Throw BargeFailures to fail it. */
  onChunk?(run: Running & { chunkIndex: number; attempt: number }): Promise<ChunkReport | void>;
  onFinalize?(run: Running): Promise<void>;
}

/** As often as the workers send heartbeats (test/support/time-skipping.ts). */
const HEARTBEAT_MS = 100;

export class FakeActivities {
  readonly calls: ActivityCall[] = [];
  private readonly batches = new Map<string, FakeBatch>();
  private seq = 0;

  /** `now` reads the test server's clock. */
  constructor(private readonly now: () => Promise<number>) {}

  add(batchId: string, batch: FakeBatch): void {
    this.batches.set(batchId, batch);
  }

  callsOf(batchId: string, activity?: ActivityName): ActivityCall[] {
    return this.calls.filter((c) => c.batchId === batchId && (!activity || c.activity === activity));
  }

  /** The activities, as a worker registers them. */
  activities(): Activities {
    return {
      probeDependencies: async (): Promise<ProbeResult> => ({
        worker: 'mock',
        postgres: 'mock',
        storage: 'ok',
      }),
      validateInput: ({ batchId }: { batchId: string }): Promise<ValidationResult> =>
        this.track('validateInput', batchId, {}, async (run, batch) => {
          await batch.onValidate?.(run);
          const chunkCount = batch.chunkCount ?? 1;
          return (
            batch.validation ?? {
              ok: true,
              total: chunkCount * 10,
              chunkCount,
              model: 'gpt-4o-mini',
              capacity: 0,
              stillValidating: true,
            }
          );
        }),
      dispatchChunk: ({
        batchId,
        chunkIndex,
      }: {
        batchId: string;
        chunkIndex: number;
      }): Promise<ChunkReport> =>
        this.track('dispatchChunk', batchId, { chunkIndex }, async (run, batch) => {
          const report = await batch.onChunk?.({ ...run, chunkIndex, attempt: run.call.attempt });
          return report ?? { end: 'done', recorded: 10, unanswered: 0 };
        }),
      finalizeBatch: (request: FinalizeRequest): Promise<{ status: string }> =>
        this.track('finalizeBatch', request.batchId, { finalize: request }, async (run, batch) => {
          await batch.onFinalize?.(run);
          return { status: request.reason };
        }),
      markCancelling: ({ batchId }: { batchId: string }): Promise<BatchStatus> =>
        this.track('markCancelling', batchId, {}, async (): Promise<BatchStatus> => 'cancelling'),
    };
  }

  private async track<T>(
    activity: ActivityName,
    batchId: string,
    extra: Pick<ActivityCall, 'chunkIndex' | 'finalize'>,
    body: (run: Running, batch: FakeBatch) => Promise<T>,
  ): Promise<T> {
    const batch = this.batches.get(batchId);
    if (!batch) throw ApplicationFailure.nonRetryable(`No fake batch ${batchId}`, 'BatchNotFound');
    const ctx = Context.current();
    const call: ActivityCall = {
      activity,
      batchId,
      runId: ctx.info.workflowExecution?.runId ?? '',
      attempt: ctx.info.attempt,
      ...extra,
      startSeq: ++this.seq,
      startedAt: await this.now(),
    };
    this.calls.push(call);
    const ended = (
      kind: 'returned' | 'failed' | 'cancelled',
      reason?: 'cancelRequested' | 'notFound' | 'other',
    ) => (call.end = { seq: ++this.seq, kind, reason });
    const run: Running = {
      call,
      untilCancelled: async ({ acknowledgeAfterMs = 0 } = {}) => {
        try {
          for (;;) {
            ctx.heartbeat();
            await ctx.sleep(HEARTBEAT_MS);
          }
        } catch (err) {
          if (acknowledgeAfterMs > 0) await new Promise((r) => setTimeout(r, acknowledgeAfterMs));
          throw err;
        }
      },
      park: async () => {
        throw new CompleteAsyncError();
      },
      until: (gate: Gate) => gate.opened,
    };
    try {
      // As the real activities do: a BargeFailure thrown by a script reaches Temporal with its type and retryability.
      const result = await asActivity(() => body(run, batch));
      ended('returned');
      return result;
    } catch (err) {
      if (err instanceof CompleteAsyncError) throw err;
      if (err instanceof CancelledFailure) {
        const details = ctx.cancellationDetails;
        ended(
          'cancelled',
          details?.cancelRequested ? 'cancelRequested' : details?.notFound ? 'notFound' : 'other',
        );
      } else {
        ended('failed');
      }
      throw err;
    }
  }
}
