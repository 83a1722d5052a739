import { CancelledFailure, Context } from '@temporalio/activity';
import { BatchRepository, RequestOutcome } from '../../src/batches/store/batch.repository';
import { outcomeLine } from '../../src/batches/finalize/output-lines';
import type { ActivityDeps } from '../deps';
import { readChunk } from '../../src/batches/dispatch/chunk-reader';

/** Heartbeat details: attempts made so far per line, so retries survive worker restarts. */
export interface ChunkCheckpoint {
  attempts: Record<number, number>;
}

export interface ChunkResult {
  recorded: number;
}

const FLUSH_EVERY_MS = 250;
const FLUSH_AT = 100;
const HEARTBEAT_EVERY_MS = 1_000;

export function createDispatchActivities({ config, db, storage, gateway }: ActivityDeps) {
  const batches = new BatchRepository(db);

  return {
    /**
     * Sends one chunk's unanswered requests upstream and records each final outcome exactly
     * once (Postgres is the truth: lines answered by an earlier attempt are skipped). One bad
     * request never fails the chunk; only cancellation or an infrastructure fault does, and a
     * retry resumes where this attempt stopped.
     */
    async dispatchChunk({
      batchId,
      chunkIndex,
    }: {
      batchId: string;
      chunkIndex: number;
    }): Promise<ChunkResult> {
      const ctx = Context.current();
      const batch = await batches.find(batchId);
      if (!batch) throw new Error(`batch ${batchId} not found`);
      const chunk = await batches.chunk(batchId, chunkIndex);
      const answered = await batches.answeredLines(
        batchId,
        chunk.firstLine,
        chunk.firstLine + chunk.lineCount,
      );
      if (answered.size >= chunk.requestCount) return { recorded: 0 };
      const requests = await readChunk(storage, await batches.inputObjectKey(batch), chunk, answered);

      const previous = ctx.info.heartbeatDetails as ChunkCheckpoint | undefined;
      const attempts: Record<number, number> = { ...(previous?.attempts ?? {}) };
      const signal = ctx.cancellationSignal;
      const deadline = batch.expiresAt.getTime();

      let pending: RequestOutcome[] = [];
      let recorded = 0;
      let flushing = Promise.resolve();
      const flush = () => {
        if (pending.length === 0) return flushing;
        const batchOf = pending;
        pending = [];
        flushing = flushing.then(async () => {
          recorded += await batches.recordOutcomes(batchId, batchOf);
          for (const o of batchOf) delete attempts[o.line];
        });
        return flushing;
      };
      const flushTimer = setInterval(() => void flush().catch(() => undefined), FLUSH_EVERY_MS);
      const beat = () => ctx.heartbeat({ attempts } satisfies ChunkCheckpoint);
      const heartbeatTimer = setInterval(beat, HEARTBEAT_EVERY_MS);
      beat();

      let next = 0;
      const runOne = async (): Promise<void> => {
        while (next < requests.length && !signal.aborted) {
          const request = requests[next++];
          let result;
          try {
            result = await gateway.call({
              requestId: `${batchId}:${request.line}`,
              batchId,
              tenantId: batch.tenantId,
              endpoint: batch.endpoint,
              body: request.body,
              provider: batch.provider,
              deadline,
              attemptsSoFar: attempts[request.line] ?? 0,
              signal,
              onRetry: (n) => (attempts[request.line] = n),
            });
          } catch (err) {
            if (signal.aborted) return; // cancelled: this request stays unanswered
            throw err;
          }
          const { ok, output, usage } = outcomeLine(request.customId, result);
          pending.push({ line: request.line, ok, output, ...usage });
          if (pending.length >= FLUSH_AT) await flush();
        }
      };

      try {
        const workers = Math.min(config.batches.chunkConcurrency, requests.length);
        await Promise.all(Array.from({ length: workers }, runOne));
      } finally {
        clearInterval(flushTimer);
        clearInterval(heartbeatTimer);
        // Whatever finished is kept, also when cancelled or failing.
        await flush();
      }
      if (signal.aborted) throw new CancelledFailure('chunk cancelled');
      return { recorded };
    },
  };
}
