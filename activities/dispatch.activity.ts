import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { randomBytes } from 'node:crypto';
import { InvalidBatchState, PoisonInput } from '../src/common/failures';
import { readChunk } from '../src/batches/dispatch/chunk-reader';
import { ChunkRun, type ChunkReport } from '../src/batches/dispatch/chunk-run';
import { isTerminal } from '../src/batches/store/batch.repository';
import type { Logger } from '../src/observability/logger';
import type { ActivityDeps } from './deps';
import { asActivity } from './failure';

/** Heartbeat details: attempts made so far per line, so retries survive worker restarts. */
export interface ChunkCheckpoint {
  attempts: Record<number, number>;
}

const HEARTBEAT_EVERY_MS = 1_000;
const CLAIM_POLL_MS = 500;

/** How outcomes are flushed to Postgres (see OutcomeBuffer). */
const FLUSH = { maxRows: 200, maxBytes: 1024 * 1024, intervalMs: 250 };

/**
 * Worker memory per byte of chunk input, which is what the chunk budget
 * (worker.maxChunkBytesInMemory) is charged: the line read back (a Buffer, then the string
 * JSON.parse takes), the parsed body held while the chunk runs, and while a request is in
 * flight its JSON text and the socket's copy of it. Charged 1 byte per byte, bench m1 (1 MB
 * requests, 96 MiB of input held) peaked 461 MiB above an idle worker's 288 MiB: about 4.8.
 */
export const MEMORY_PER_INPUT_BYTE = 4;

export function createDispatchActivities({
  config,
  batches,
  work,
  files,
  storage,
  gateway,
  providerKeys,
  chunkMemory,
  answerMemory,
  clock,
  metrics,
  logger,
}: ActivityDeps) {
  const { chunkClaimTtlMs, recordGiveUpMs } = config.batches;

  return {
    /**
     * Sends one chunk's unanswered requests upstream and records each final outcome exactly
     * once (ChunkRun does the work; this adapts Temporal onto it):
     * - Temporal's cancellation is told apart by its reason: a cancel requested by the
     *   workflow (the batch is cancelled or expired) aborts the calls in flight; any other
     *   (this run closed at continue-as-new, the worker shutting down, a heartbeat timeout)
     *   drains: nothing new starts, calls in flight finish and are recorded.
     * - The chunk is claimed in Postgres for as long as this attempt sends its requests, so an
     *   attempt started while an earlier one still drains waits for it instead of sending the
     *   same requests again.
     */
    dispatchChunk: ({ batchId, chunkIndex }: { batchId: string; chunkIndex: number }): Promise<ChunkReport> =>
      asActivity(async () => {
        const startedAt = clock.now();
        let log = logger.child({ batch_id: batchId, chunk: chunkIndex });
        let end: ChunkReport['end'] | 'failed' = 'failed';
        try {
          const report = await dispatch(batchId, chunkIndex, (child) => (log = child));
          end = report.end;
          log.info(
            { recorded: report.recorded, unanswered: report.unanswered, end: report.end },
            `chunk ${report.end}: ${report.recorded} recorded, ${report.unanswered} unanswered`,
          );
          return report;
        } catch (error) {
          if (error instanceof CancelledFailure) end = 'aborted';
          else if (error instanceof ApplicationFailure && error.type === 'WorkerShutdown') end = 'drained';
          else log.warn({ err: error }, 'chunk attempt failed');
          throw error;
        } finally {
          metrics.chunkSeconds.labels(end).observe((clock.now() - startedAt) / 1000);
        }
      }),
  };

  async function dispatch(
    batchId: string,
    chunkIndex: number,
    useLogger: (log: Logger) => Logger,
  ): Promise<ChunkReport> {
    const ctx = Context.current();
    const batch = await batches.get(batchId);
    const log = useLogger(logger.child({ batch_id: batchId, tenant_id: batch.tenantId, chunk: chunkIndex }));
    if (isTerminal(batch.status)) return { end: 'done', recorded: 0, unanswered: 0 };
    const chunk = await work.chunk(batchId, chunkIndex);
    if (!chunk) throw new InvalidBatchState(`batch ${batchId} (${batch.status}) has no chunk ${chunkIndex}`);

    const abort = new AbortController();
    const drain = new AbortController();
    const onCancel = (): void => {
      if (ctx.cancellationDetails?.cancelRequested) abort.abort(ctx.cancellationSignal.reason);
      else drain.abort(ctx.cancellationSignal.reason);
    };
    ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    if (ctx.cancellationSignal.aborted) onCancel();

    let run: ChunkRun | undefined;
    const checkpoint = (): ChunkCheckpoint => ({
      attempts: run?.attempts ?? (ctx.info.heartbeatDetails as ChunkCheckpoint | undefined)?.attempts ?? {},
    });
    const heartbeat = setInterval(() => ctx.heartbeat(checkpoint()), HEARTBEAT_EVERY_MS);
    ctx.heartbeat(checkpoint());
    const token = `${ctx.info.workflowExecution?.runId}/${ctx.info.activityId}/${ctx.info.attempt}/${randomBytes(4).toString('hex')}`;
    let renew: NodeJS.Timeout | undefined;
    let release: (() => void) | undefined;
    try {
      while (!(await work.claimChunk(batchId, chunkIndex, token, chunkClaimTtlMs))) {
        if (abort.signal.aborted) throw new CancelledFailure('chunk cancelled');
        if (drain.signal.aborted) return { end: 'drained', recorded: 0, unanswered: chunk.requestCount };
        await ctx.sleep(CLAIM_POLL_MS).catch(() => undefined);
      }
      // Renewed well before it lapses; a renewal that finds the claim taken (this attempt
      // lost it while cut off from Postgres) drains, so two attempts never both send.
      renew = setInterval(() => {
        work.claimChunk(batchId, chunkIndex, token, chunkClaimTtlMs).then(
          (held) => held || drain.abort(new Error('chunk claim lost')),
          () => undefined, // Postgres unreachable: the claim may lapse; the next renewal tells
        );
      }, chunkClaimTtlMs / 3);

      const answered = await work.answeredLines(batchId, chunk.firstLine, chunk.firstLine + chunk.lineCount);
      if (answered.size >= chunk.requestCount) return { end: 'done', recorded: 0, unanswered: 0 };
      const input = await files.inputObject(batch.inputFileId);
      if (!input) throw new PoisonInput(`the input file ${batch.inputFileId} of ${batchId} is gone`);
      // The chunk's requests stay in memory while it runs: within the worker's budget, at what
      // they cost there rather than their size on disk.
      const stopped = AbortSignal.any([abort.signal, drain.signal]);
      const releaseMemory = await chunkMemory
        .acquire((chunk.byteEnd - chunk.byteStart) * MEMORY_PER_INPUT_BYTE, stopped)
        .catch(() => null);
      if (!releaseMemory) {
        if (abort.signal.aborted) throw new CancelledFailure('chunk cancelled');
        return { end: 'drained', recorded: 0, unanswered: chunk.requestCount - answered.size };
      }
      release = releaseMemory;
      const contents = await readChunk(storage, input.objectKey, chunk, answered);
      log.debug(
        { requests: contents.requests.length, answered: answered.size },
        `chunk started: ${contents.requests.length} requests to send`,
      );

      // Looked up here, by the batch's ids: no key ever passes through Temporal.
      const credentials = await providerKeys.forBatch(batch);
      run = new ChunkRun(
        { gateway, recorder: work, clock, metrics, answerMemory },
        {
          batchId,
          tenantId: batch.tenantId,
          endpoint: batch.endpoint,
          model: batch.model,
          provider: batch.provider,
          credentials,
          deadline: batch.expiresAt.getTime(),
          ...contents,
          attempts: checkpoint().attempts,
        },
        { abort: abort.signal, drain: drain.signal },
        { flush: FLUSH, recordRetry: { baseMs: 100, maxMs: 2_000, giveUpAfterMs: recordGiveUpMs } },
      );
      const report = await run.run();
      if (report.end === 'aborted') throw new CancelledFailure('chunk cancelled');
      if (report.end === 'drained' && ctx.cancellationDetails?.workerShutdown) {
        // Retried on another worker; what this one answered is recorded.
        throw ApplicationFailure.retryable('the worker is shutting down', 'WorkerShutdown');
      }
      return report;
    } finally {
      release?.();
      clearInterval(heartbeat);
      clearInterval(renew);
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
      await work.releaseChunk(batchId, chunkIndex, token).catch(() => undefined); // it lapses anyway
    }
  }
}
