import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { BatchRepository, RequestOutcome } from '../../src/batches/store/batch.repository';
import { errorLine, UNFINISHED } from '../../src/batches/finalize/output-lines';
import { TERMINAL_STATUSES } from '../../src/database/entities/batch.entity';
import type { ActivityDeps } from '../deps';
import { readChunk } from '../../src/batches/dispatch/chunk-reader';

export type FinalizeReason = 'completed' | 'cancelled' | 'expired';

/** Output files get ids derived from the batch, so a retried finalize finds what it already wrote. */
export function outputFileId(batchId: string, kind: 'output' | 'error'): string {
  return `file-${createHash('sha256').update(`${batchId}/${kind}`).digest('base64url').replace(/[-_]/g, '').slice(0, 24)}`;
}

export function createFinalizeActivities({ db, storage, files }: ActivityDeps) {
  const batches = new BatchRepository(db);

  return {
    /**
     * Gives every request its one line: unanswered requests (cancelled, expired) get an error
     * line; then the output and error files are streamed from the recorded lines into storage.
     * Idempotent: a retry re-uses what an earlier attempt wrote.
     */
    async finalizeBatch({
      batchId,
      reason,
    }: {
      batchId: string;
      reason: FinalizeReason;
    }): Promise<{ status: string }> {
      const ctx = Context.current();
      const batch = await batches.find(batchId);
      if (!batch) throw new Error(`batch ${batchId} not found`);
      if (TERMINAL_STATUSES.includes(batch.status)) return { status: batch.status };
      if (reason === 'completed') await batches.markFinalizing(batchId);

      const key = await batches.inputObjectKey(batch);
      const unfinished = UNFINISHED[reason];
      for (const chunk of await batches.chunks(batchId)) {
        const answered = await batches.answeredLines(
          batchId,
          chunk.firstLine,
          chunk.firstLine + chunk.lineCount,
        );
        if (answered.size >= chunk.requestCount) continue;
        const missing = await readChunk(storage, key, chunk, answered);
        const outcomes: RequestOutcome[] = missing.map((r) => ({
          line: r.line,
          ok: false,
          output: errorLine(r.customId, unfinished.code, unfinished.message),
          inputTokens: 0,
          cachedTokens: 0,
          outputTokens: 0,
          reasoningTokens: 0,
        }));
        await batches.recordOutcomes(batchId, outcomes);
        ctx.heartbeat({ chunk: chunk.idx });
      }

      const counts = await batches.countOutcomes(batchId);
      const expiresAt = batch.outputExpiresAfterSeconds
        ? new Date(Date.now() + batch.outputExpiresAfterSeconds * 1000)
        : null;
      const write = async (kind: 'output' | 'error', ok: boolean) => {
        const id = outputFileId(batchId, kind);
        if (await files.exists(id)) return id;
        ctx.heartbeat({ writing: kind });
        const record = await files.create({
          id,
          tenantId: batch.tenantId,
          filename: `${batchId}_${kind}.jsonl`,
          purpose: 'batch_output',
          source: withNewlines(batches.outputs(batchId, ok)),
          expiresAt,
        });
        return record.id;
      };
      const outputFileIdValue = counts.ok > 0 ? await write('output', true) : null;
      const errorFileIdValue = counts.failed > 0 ? await write('error', false) : null;

      await batches.markEnded(batchId, reason, {
        outputFileId: outputFileIdValue,
        errorFileId: errorFileIdValue,
      });
      await batches.deleteWorkingData(batchId);
      return { status: reason };
    },
  };
}

/** Joins lines into ~1 MiB buffers: far fewer, larger writes into the multipart upload. */
async function* withNewlines(lines: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let parts: string[] = [];
  let size = 0;
  for await (const line of lines) {
    parts.push(line, '\n');
    size += line.length + 1;
    if (size >= 1 << 20) {
      yield Buffer.from(parts.join(''));
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.from(parts.join(''));
}
