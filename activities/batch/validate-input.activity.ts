import { Context } from '@temporalio/activity';
import { BatchRepository, ChunkRange } from '../../src/batches/store/batch.repository';
import { BatchEndpoint } from '../../src/common/endpoints';
import { validateLine } from '../../src/batches/validate/input-validation';
import { isBlank, jsonlLines, LineTooLongError } from '../../src/batches/validate/jsonl-lines';
import type { BatchErrorItem } from '../../src/database/entities/batch.entity';
import type { ActivityDeps } from '../deps';

/** How many validation errors a failed batch lists; the rest are counted. */
export const MAX_LISTED_ERRORS = 100;

export type ValidationResult =
  | { ok: true; total: number; chunkCount: number; model: string | null; stillValidating: boolean }
  | { ok: false; errorCount: number };

/** Collects errors up to the cap and counts the rest. */
class ErrorList {
  readonly items: BatchErrorItem[] = [];
  private hidden = 0;

  add(error: BatchErrorItem): void {
    if (this.items.length < MAX_LISTED_ERRORS) this.items.push(error);
    else this.hidden++;
  }

  get count(): number {
    return this.items.length + this.hidden;
  }

  finish(): BatchErrorItem[] {
    if (this.hidden === 0) return this.items;
    const message = `${this.hidden} more error${this.hidden === 1 ? ' was' : 's were'} found and not listed.`;
    return [...this.items, { code: 'too_many_errors', message, param: null, line: null }];
  }
}

export function createValidateActivities({ config, db, storage, gateway }: ActivityDeps) {
  const batches = new BatchRepository(db);

  return {
    /**
     * Streams the input file once, checks every line, and records where each chunk of
     * `batches.chunkSize` requests lies. On any error the batch ends `failed` with all errors
     * found (capped). Idempotent: a retry starts over and replaces the chunk rows.
     */
    async validateInput({ batchId }: { batchId: string }): Promise<ValidationResult> {
      const batch = await batches.find(batchId);
      if (!batch) throw new Error(`batch ${batchId} not found`);
      const endpoint = batch.endpoint as BatchEndpoint;
      const errors = new ErrorList();
      const { maxRequestsPerBatch, maxBatchFileBytes } = config.limits;
      const key = await batches.inputObjectKey(batch);
      const size = await storage.size(key);

      const fail = async (total: number): Promise<ValidationResult> => {
        await batches.markFailed(batchId, errors.finish(), total);
        return { ok: false, errorCount: errors.count };
      };
      if (size === null) {
        errors.add({
          code: 'invalid_file',
          message: 'The input file could not be read.',
          param: 'input_file_id',
          line: null,
        });
        return fail(0);
      }
      if (size > maxBatchFileBytes) {
        errors.add({
          code: 'file_too_large',
          message: `The input file is ${size} bytes; the limit is ${maxBatchFileBytes} bytes.`,
          param: 'input_file_id',
          line: null,
        });
        return fail(0);
      }

      const ctx = Context.current();
      const seen = new Set<string>();
      const chunks: ChunkRange[] = [];
      let open: ChunkRange | undefined;
      let total = 0;
      let model: string | null = null;
      let modelLine = 0;

      try {
        for await (const l of jsonlLines(await storage.getStream(key))) {
          if (l.line % 2_000 === 0) ctx.heartbeat({ bytes: l.end });
          // Blank lines need no chunk: the next request's range spans any before it.
          if (isBlank(l.bytes)) continue;
          total++;
          if (total > maxRequestsPerBatch) continue;
          const checked = validateLine(l.bytes.toString('utf8'), l.line, endpoint);
          if ('error' in checked) {
            errors.add(checked.error);
            continue;
          }
          const { customId, model: lineModel } = checked.request;
          if (seen.has(customId)) {
            errors.add({
              code: 'duplicate_custom_id',
              message: `The custom_id '${customId}' appears more than once; each must be unique in the file.`,
              param: 'custom_id',
              line: l.line,
            });
            continue;
          }
          seen.add(customId);
          if (model === null) {
            model = lineModel;
            modelLine = l.line;
          } else if (lineModel !== model) {
            errors.add({
              code: 'mismatched_model',
              message: `The model '${lineModel}' differs from '${model}' (line ${modelLine}); a batch uses one model.`,
              param: 'body.model',
              line: l.line,
            });
            continue;
          }
          if (!open)
            open = {
              idx: chunks.length,
              firstLine: l.line,
              lineCount: 0,
              requestCount: 0,
              byteStart: l.start,
              byteEnd: l.end,
            };
          open.requestCount++;
          open.lineCount = l.line - open.firstLine + 1;
          open.byteEnd = l.end;
          if (open.requestCount === config.batches.chunkSize) {
            chunks.push(open);
            open = undefined;
          }
        }
      } catch (err) {
        if (!(err instanceof LineTooLongError)) throw err;
        errors.add({ code: 'line_too_large', message: err.message, param: null, line: err.line });
      }
      if (open) chunks.push(open);

      if (total === 0) {
        errors.add({
          code: 'empty_file',
          message: 'The input file has no requests.',
          param: 'input_file_id',
          line: null,
        });
      }
      if (total > maxRequestsPerBatch) {
        errors.add({
          code: 'too_many_requests_in_batch',
          message: `The input file has ${total} requests; a batch may have at most ${maxRequestsPerBatch}.`,
          param: 'input_file_id',
          line: null,
        });
      }
      if (model !== null) {
        const route = gateway.checkRoute(model, endpoint, batch.provider);
        if (!route.ok) {
          errors.add({
            code: 'model_not_found',
            message: route.reason ?? `The model '${model}' is not served by any configured upstream.`,
            param: 'body.model',
            line: modelLine,
          });
        }
      }
      if (errors.count > 0) return fail(total);

      await batches.replaceChunks(batchId, chunks);
      const stillValidating = await batches.markInProgress(batchId, total, model);
      return { ok: true, total, chunkCount: chunks.length, model, stillValidating };
    },
  };
}
