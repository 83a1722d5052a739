import { Context } from '@temporalio/activity';
import type { BatchEndpoint } from '../src/common/endpoints';
import { DEFAULT_ERROR_LIMITS, InputScan } from '../src/batches/validate/input-scan';
import { jsonlLines, LineTooLongError } from '../src/batches/validate/jsonl-lines';
import type { ActivityDeps } from './deps';
import { asActivity } from './failure';

export type ValidationResult =
  | {
      ok: true;
      total: number;
      chunkCount: number;
      model: string | null;
      /** Requests the upstreams serving the model take in flight in all (sizes the batch's window). */
      capacity: number;
      /** False when the batch left `validating` meanwhile (it is being cancelled). */
      stillValidating: boolean;
    }
  | { ok: false; errorCount: number };

/** Lines between heartbeats while scanning. */
const HEARTBEAT_EVERY_LINES = 2_000;

export function createValidateActivities({
  config,
  db,
  quotas,
  batches,
  work,
  files,
  storage,
  gateway,
  metrics,
  logger,
  clock,
}: ActivityDeps) {
  return {
    /**
     * Streams the input file once through InputScan (every rule lives there) and stores the
     * verdict: the chunk plan and `in_progress`, or `failed` with every error found (capped).
     * Idempotent: a retry starts over; a batch already past validation reports its plan.
     */
    validateInput: ({ batchId }: { batchId: string }): Promise<ValidationResult> =>
      asActivity(async () => {
        const startedAt = clock.now();
        let result: ValidationResult | null = null;
        try {
          result = await validate(batchId);
          return result;
        } finally {
          const label = result === null ? 'error' : result.ok ? 'ok' : 'invalid';
          metrics.validationSeconds.labels(label).observe((clock.now() - startedAt) / 1000);
        }
      }),
  };

  async function validate(batchId: string): Promise<ValidationResult> {
    const batch = await batches.get(batchId);
    const log = logger.child({ batch_id: batchId, tenant_id: batch.tenantId });
    const capacityOf = (model: string | null) =>
      (model && gateway.checkRoute(model, batch.endpoint, batch.provider).capacity) || 0;
    if (batch.status === 'failed') return { ok: false, errorCount: batch.errors?.data.length ?? 0 };
    if (batch.status !== 'validating') {
      // An earlier attempt finished validation; its answer was lost.
      const chunks = await work.chunks(batchId);
      return {
        ok: true,
        total: batch.requestTotal,
        chunkCount: chunks.length,
        model: batch.model,
        capacity: capacityOf(batch.model),
        stillValidating: false,
      };
    }

    const { limits, batches: settings } = config;
    const scan = new InputScan(
      batch.endpoint as BatchEndpoint,
      {
        maxRequests: limits.maxRequestsPerBatch,
        chunkMaxRequests: settings.chunkSize,
        chunkMaxBytes: settings.chunkMaxBytes,
        ...DEFAULT_ERROR_LIMITS,
      },
      (model) => gateway.checkRoute(model, batch.endpoint, batch.provider),
    );
    const input = await files.inputObject(batch.inputFileId);
    const size = input ? await storage.size(input.objectKey) : null;
    if (!input || size === null) {
      scan.fileError('invalid_file', 'The input file could not be read.');
    } else if (size > limits.maxBatchFileBytes) {
      scan.fileError(
        'file_too_large',
        `The input file is ${size} bytes; the limit is ${limits.maxBatchFileBytes} bytes.`,
      );
    } else {
      const ctx = Context.current();
      try {
        for await (const line of jsonlLines(await storage.getStream(input.objectKey))) {
          if (line.line % HEARTBEAT_EVERY_LINES === 0) ctx.heartbeat({ bytes: line.end });
          scan.add(line);
        }
      } catch (error) {
        if (!(error instanceof LineTooLongError)) throw error;
        scan.lineTooLong(error.line, error.maxLineBytes);
      }
    }

    const result = scan.finish();
    if (!result.ok) {
      if (await batches.markValidationFailed(batchId, result.errors, result.total)) {
        metrics.transition('failed');
        log.info(
          { errors: result.errors.length, first_error: result.errors[0]?.code },
          `validation failed: ${result.errors.length} errors`,
        );
      }
      return { ok: false, errorCount: result.errors.length };
    }
    await work.replaceChunks(batchId, result.chunks);
    // One transaction under the tenant's row lock: the quota check and the move to in_progress
    // (from which the estimate counts as held) cannot interleave with another batch's.
    const admitted = await db.transaction(async (tx) => {
      const admission = await quotas.admitTokens(tx, batch, result.model, result.estimatedTokens);
      if (!admission.ok) {
        const error = { code: 'token_limit_exceeded', message: admission.message, param: null, line: null };
        return {
          ok: false as const,
          failed: await batches.markValidationFailed(batchId, [error], result.total, tx),
        };
      }
      const moved = await batches.markInProgress(
        batchId,
        result.total,
        result.model,
        result.estimatedTokens,
        tx,
      );
      return { ok: true as const, stillValidating: moved };
    });
    if (!admitted.ok) {
      await work.deleteWorkingData(batchId);
      if (admitted.failed) {
        metrics.transition('failed');
        log.info(
          { errors: 1, first_error: 'token_limit_exceeded', estimated_tokens: result.estimatedTokens },
          'validation failed: over the enqueued-token quota',
        );
      }
      return { ok: false, errorCount: 1 };
    }
    const { stillValidating } = admitted;
    if (stillValidating) {
      metrics.transition('in_progress');
      log.info(
        { requests: result.total, chunks: result.chunks.length, model: result.model },
        `validated: ${result.total} requests in ${result.chunks.length} chunks`,
      );
    }
    return {
      ok: true,
      total: result.total,
      chunkCount: result.chunks.length,
      model: result.model,
      capacity: capacityOf(result.model),
      stillValidating,
    };
  }
}
