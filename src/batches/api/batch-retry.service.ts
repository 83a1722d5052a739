import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { BatchEndpoint } from '../../common/endpoints';
import { conflict, invalidRequest, notFound } from '../../common/openai-error';
import { requireStorable } from '../../common/tenant-input';
import { echo } from '../../common/text';
import type { BargeConfig } from '../../config/config';
import { CONFIG } from '../../core.module';
import { TERMINAL_STATUSES } from '../../database/entities/batch.entity';
import { FileStore } from '../../files/file-store';
import { OBJECT_STORAGE, type ObjectStorage } from '../../storage/object-storage';
import { BatchRepository } from '../store/batch.repository';
import { ResultIndex, type Outcome } from '../store/result-index';
import { jsonlLines } from '../validate/jsonl-lines';
import { MAX_IDEMPOTENCY_KEY_LENGTH, providerKeyPart, replay, type Idempotency } from './idempotency';
import { presentBatch } from './batch.presenter';
import { BatchesService } from './batches.service';
import { parseWindow } from './create-batch.request';

/**
 * POST /v1/batches/{id}/retry: a new batch of exactly the requests of an ended batch that
 * failed (or expired, or were cancelled: `include`), their input lines byte for byte, read
 * back from the original input file by the line numbers its outcome rows keep
 * (result-index.ts). Same endpoint, model, provider and output expiry; the window as given or
 * the original's. The two are linked in their metadata: `barge_retry_of` on the new batch,
 * `barge_retried_by` (the latest retry) on the original.
 */

export const RETRY_OF_KEY = 'barge_retry_of';
export const RETRIED_BY_KEY = 'barge_retried_by';

/** What `include` may name, and the outcomes each stands for. */
const INCLUDABLE: Record<string, Outcome> = { failed: 'failed', expired: 'expired', cancelled: 'cancelled' };

export interface RetryRequest {
  include: Outcome[];
  completionWindow: string | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseRetry(body: unknown, completionWindows: string[]): RetryRequest {
  if (body !== undefined && body !== null && !isObject(body)) {
    throw invalidRequest('The request body must be a JSON object (Content-Type: application/json).');
  }
  const b = (body ?? {}) as Record<string, unknown>;
  let include: Outcome[] = ['failed'];
  if (b.include !== undefined && b.include !== null) {
    if (!Array.isArray(b.include) || b.include.length === 0) {
      throw invalidRequest("'include' must be a non-empty array.", 'include', 'invalid_type');
    }
    include = b.include.map((v: unknown, i: number) => {
      if (typeof v !== 'string' || !Object.hasOwn(INCLUDABLE, v)) {
        throw invalidRequest(
          `Invalid value ${echo(v)}; 'include' may hold failed, expired and cancelled.`,
          `include[${i}]`,
          'invalid_value',
        );
      }
      return INCLUDABLE[v];
    });
  }
  const window = b.completion_window;
  return {
    include: [...new Set(include)].sort(),
    completionWindow:
      window === undefined || window === null ? undefined : parseWindow(window, completionWindows),
  };
}

@Injectable()
export class BatchRetryService {
  private readonly index: ResultIndex;

  constructor(
    @Inject(CONFIG) private readonly config: BargeConfig,
    private readonly db: DataSource,
    private readonly batches: BatchRepository,
    private readonly files: FileStore,
    @Inject(OBJECT_STORAGE) private readonly storage: ObjectStorage,
    private readonly creator: BatchesService,
  ) {
    this.index = new ResultIndex(db);
  }

  /**
   * `providerKey` (x-barge-provider-key): the tenant's own key for the retry, as on create; the
   * original's own key is not carried over (it was deleted when the original ended).
   */
  async retry(tenantId: string, id: string, body: unknown, idempotencyKey?: string, providerKey?: string) {
    const original = await this.batches.findForTenant(tenantId, id);
    if (!original) throw notFound(`No such Batch object: ${echo(id)}`, 'batch_id');
    const request = parseRetry(body, this.config.batches.completionWindows);
    if (providerKey !== undefined) this.creator.checkProviderKey(original.provider);
    const idempotency = this.idempotency(idempotencyKey, original.id, request, providerKey);
    if (idempotency) {
      const existing = await this.batches.findByIdempotencyKey(tenantId, idempotency.key);
      if (existing) return presentBatch(replay(existing, idempotency));
    }
    if (!TERMINAL_STATUSES.includes(original.status)) {
      throw conflict(
        `Batch ${original.id} is ${original.status}; only an ended batch can be retried.`,
        'batch_not_ended',
      );
    }
    // Normally done by finalize already; a finalize that died after its commit leaves it to now.
    await this.index.compact(original.id);
    const wanted = await this.index.linesWith(original.id, request.include);
    if (wanted.length === 0) {
      throw invalidRequest(
        `Batch ${original.id} has no ${request.include.join(' or ')} requests to retry.`,
        'include',
        'nothing_to_retry',
      );
    }
    const input = await this.files.inputObject(original.inputFileId);
    if (!input) {
      throw conflict(
        `The input file ${original.inputFileId} of batch ${original.id} has been deleted; its requests cannot be read again.`,
        'input_file_unavailable',
      );
    }

    const file = await this.files.create({
      tenantId,
      filename: `${original.id}_retry.jsonl`,
      purpose: 'batch',
      source: this.originalLines(input.objectKey, wanted),
    });
    const metadata: Record<string, string> = { ...(original.metadata ?? {}), [RETRY_OF_KEY]: original.id };
    delete metadata[RETRIED_BY_KEY];
    const created = await this.creator.createBatch(
      tenantId,
      {
        inputFileId: file.id,
        endpoint: original.endpoint as BatchEndpoint,
        completionWindow: request.completionWindow ?? original.completionWindow,
        metadata,
        outputExpiresAfterSeconds: original.outputExpiresAfterSeconds,
      },
      { provider: original.provider ?? undefined, idempotency, providerKey },
    );
    if (created.input_file_id !== file.id) {
      // A concurrent retry with the same Idempotency-Key won: its batch is the answer.
      await this.files.delete(tenantId, file.id).catch(() => undefined);
      return created;
    }
    await this.db.query(
      `UPDATE batches SET metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object($2::text, $3::text)
        WHERE id = $1`,
      [original.id, RETRIED_BY_KEY, created.id],
    );
    return created;
  }

  /**
   * The input lines at `wanted` line numbers, as they are in the file (without their line
   * terminator), each followed by "\n". Each line's custom_id is checked against the outcome
   * row's, so a line is never taken for another.
   */
  private async *originalLines(
    objectKey: string,
    wanted: readonly { line: number; customId: string }[],
  ): AsyncGenerator<Buffer> {
    let next = 0;
    const newline = Buffer.from('\n');
    for await (const line of jsonlLines(await this.storage.getStream(objectKey))) {
      if (next >= wanted.length) break;
      if (line.line !== wanted[next].line) continue;
      const customId = (JSON.parse(line.bytes.toString('utf8')) as { custom_id?: unknown }).custom_id;
      if (customId !== wanted[next].customId) {
        throw new Error(`line ${line.line} of the input file does not hold ${wanted[next].customId}`);
      }
      yield Buffer.concat([line.bytes, newline]);
      next++;
    }
    if (next < wanted.length) throw new Error(`the input file ends before line ${wanted[next].line}`);
  }

  /** The Idempotency-Key of a retry names the retry of this batch with these parameters. */
  private idempotency(
    header: string | undefined,
    batchId: string,
    request: RetryRequest,
    providerKey: string | undefined,
  ): Idempotency | null {
    if (header === undefined || header === '') return null;
    const key = requireStorable(header, 'Idempotency-Key');
    if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw invalidRequest(
        `The Idempotency-Key header may be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters; this one has ${key.length}.`,
        'Idempotency-Key',
        'invalid_value',
      );
    }
    const canonical = JSON.stringify([
      'retry-v1',
      batchId,
      request.include,
      request.completionWindow ?? null,
      ...providerKeyPart(providerKey),
    ]);
    return { key, fingerprint: createHash('sha256').update(canonical).digest('hex') };
  }
}
