import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  Client,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { DataSource, QueryFailedError } from 'typeorm';
import { batchWorkflow, cancelBatchSignal } from '../../workflows/batch.workflow';
import { BatchStatusKey, EndpointKey, TenantIdKey } from '../../workflows/search-attributes';
import { newId } from '../common/ids';
import { PageQuery, toListObject } from '../common/pagination';
import { conflict, invalidRequest, notFound, OpenAIError, serviceUnavailable } from '../common/openai-error';
import { BargeConfig, windowToMs } from '../config/config';
import { CONFIG } from '../core.module';
import { BatchRecord, TERMINAL_STATUSES } from '../database/entities/batch.entity';
import { FileStore } from '../files/file-store';
import { providerNames } from '../upstreams/provider-names';
import { presentBatch } from './batch.presenter';
import { BatchRepository } from './batch.repository';
import { parseCreateBatch } from './create-batch.request';
import { idempotencyOf, replay } from './idempotency';

export const PROVIDER_METADATA_KEY = 'barge_provider';

@Injectable()
export class BatchesService {
  private readonly logger = new Logger(BatchesService.name);
  private readonly batches: BatchRepository;

  constructor(
    @Inject(CONFIG) private readonly config: BargeConfig,
    db: DataSource,
    private readonly files: FileStore,
    @Inject(Client) private readonly temporal: Client,
  ) {
    this.batches = new BatchRepository(db);
  }

  /**
   * Everything checkable now is checked now (fail fast); the row is written first, then the
   * workflow is started under the batch's id, so Postgres always knows every batch.
   */
  async create(tenantId: string, body: unknown, headers: { provider?: string; idempotencyKey?: string }) {
    const request = parseCreateBatch(body, this.config.batches.completionWindows);
    const idempotency = idempotencyOf(headers.idempotencyKey, request, headers.provider);
    if (idempotency) {
      const existing = await this.batches.findByIdempotencyKey(tenantId, idempotency.key);
      if (existing) return presentBatch(replay(existing, idempotency));
    }
    const file = await this.files.get(tenantId, request.inputFileId).catch((err) => {
      // Same answer as the Files API, but naming this request's parameter.
      if (err instanceof OpenAIError && err.status === 404) {
        throw notFound(`No such File object: ${request.inputFileId}`, 'input_file_id');
      }
      throw err;
    });
    if (file.purpose !== 'batch') {
      throw invalidRequest(
        `File ${file.id} has purpose '${file.purpose}'; a batch input file must have purpose 'batch'.`,
        'input_file_id',
        'invalid_value',
      );
    }
    const provider = headers.provider || request.metadata?.[PROVIDER_METADATA_KEY] || null;
    const known = providerNames(this.config);
    if (provider && !known.includes(provider)) {
      throw invalidRequest(
        `Unknown provider '${provider}'. Configured: ${known.join(', ') || 'none'}.`,
        headers.provider ? 'x-barge-provider' : `metadata.${PROVIDER_METADATA_KEY}`,
        'invalid_value',
      );
    }

    const now = new Date();
    const batch = Object.assign(new BatchRecord(), {
      id: newId('batch_'),
      tenantId,
      endpoint: request.endpoint,
      model: null,
      inputFileId: file.id,
      completionWindow: request.completionWindow,
      status: 'validating',
      provider,
      idempotencyKey: idempotency?.key ?? null,
      idempotencyFingerprint: idempotency?.fingerprint ?? null,
      outputFileId: null,
      errorFileId: null,
      errors: null,
      metadata: request.metadata,
      outputExpiresAfterSeconds: request.outputExpiresAfterSeconds,
      createdAt: now,
      expiresAt: new Date(now.getTime() + windowToMs(request.completionWindow)),
    } satisfies Partial<BatchRecord>);
    try {
      if (!(await this.batches.insertReading(batch))) {
        throw notFound(`No such File object: ${request.inputFileId}`, 'input_file_id'); // deleted meanwhile
      }
    } catch (err) {
      // Two creates raced with the same Idempotency-Key: the first one wins.
      if (idempotency && err instanceof QueryFailedError) {
        const existing = await this.batches.findByIdempotencyKey(tenantId, idempotency.key);
        if (existing) return presentBatch(replay(existing, idempotency));
      }
      throw err;
    }
    try {
      await this.startWorkflow(batch);
    } catch (err) {
      this.logger.error(`could not start the workflow of ${batch.id}: ${(err as Error).message}`);
      await this.batches.remove(batch.id);
      throw serviceUnavailable('The batch could not be started right now; please retry.');
    }
    return presentBatch((await this.batches.find(batch.id)) ?? batch);
  }

  private async startWorkflow(batch: BatchRecord): Promise<void> {
    const { temporal, batches } = this.config;
    await this.temporal.workflow.start(batchWorkflow, {
      workflowId: batch.id,
      taskQueue: temporal.taskQueue,
      // A retried start finds the running workflow instead of starting a second one.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [
        {
          batchId: batch.id,
          expiresAt: batch.expiresAt.getTime(),
          window: batches.chunkWindow,
          upstreamTaskQueue: temporal.upstreamTaskQueue,
        },
      ],
      typedSearchAttributes: [
        { key: BatchStatusKey, value: 'validating' },
        { key: TenantIdKey, value: batch.tenantId },
        { key: EndpointKey, value: batch.endpoint },
      ],
      staticSummary: `Batch ${batch.id} (${batch.endpoint})`,
    });
  }

  async get(tenantId: string, id: string) {
    return presentBatch(await this.find(tenantId, id));
  }

  async list(tenantId: string, page: PageQuery) {
    return toListObject(await this.batches.list(tenantId, page), presentBatch);
  }

  /** Answers `cancelling` at once; the workflow stops the work and finalizes. */
  async cancel(tenantId: string, id: string) {
    const batch = await this.find(tenantId, id);
    if (batch.status === 'cancelling') return presentBatch(batch);
    this.assertCancellable(batch);
    try {
      await this.temporal.workflow.getHandle(id).signal(cancelBatchSignal);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // The workflow ended between our read and the signal: report the state it ended in.
      this.assertCancellable(await this.find(tenantId, id));
      throw err;
    }
    return presentBatch((await this.batches.markCancelling(id)) ?? batch);
  }

  private assertCancellable(batch: BatchRecord): void {
    if (TERMINAL_STATUSES.includes(batch.status)) {
      throw conflict(`Cannot cancel a batch with status '${batch.status}'.`, 'batch_not_cancellable');
    }
    if (batch.status === 'finalizing') {
      throw conflict(
        'Cannot cancel a batch that is finalizing: its results are being written.',
        'batch_not_cancellable',
      );
    }
  }

  private async find(tenantId: string, id: string): Promise<BatchRecord> {
    const batch = await this.batches.findForTenant(tenantId, id);
    if (!batch) throw notFound(`No such Batch object: ${id}`, 'batch_id');
    return batch;
  }
}
