import { Inject, Injectable, Logger } from '@nestjs/common';
import { Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DataSource, QueryFailedError } from 'typeorm';
import { cancelUpdate, NOT_CANCELLABLE } from '../../../workflows/batch.definitions';
import { newId } from '../../common/ids';
import { echo } from '../../common/text';
import { PageQuery, toListObject } from '../../common/pagination';
import {
  conflict,
  invalidRequest,
  notFound,
  OpenAIError,
  serviceUnavailable,
} from '../../common/openai-error';
import { BargeConfig, windowToMs } from '../../config/config';
import { CONFIG } from '../../core.module';
import { BatchRecord, TERMINAL_STATUSES } from '../../database/entities/batch.entity';
import { FileStore } from '../../files/file-store';
import { providerNames } from '../../upstreams/provider-names';
import { presentBatch } from './batch.presenter';
import { batchWorkflowStatus, startBatchWorkflow } from '../start-batch-workflow';
import { BatchRepository } from '../store/batch.repository';
import { parseCreateBatch, type CreateBatchRequest } from './create-batch.request';
import { Metrics } from '../../observability/metrics';
import { TenantQuotas } from '../../tenants/tenant-quotas';
import { ProviderKeyStore } from '../../tenants/provider-keys';
import { idempotencyOf, replay, type Idempotency } from './idempotency';

export const PROVIDER_METADATA_KEY = 'barge_provider';
/** A tenant's own key for the pinned upstream, for this batch only (src/tenants/provider-keys.ts). */
export const PROVIDER_KEY_HEADER = 'x-barge-provider-key';

@Injectable()
export class BatchesService {
  private readonly logger = new Logger(BatchesService.name);

  constructor(
    @Inject(CONFIG) private readonly config: BargeConfig,
    private readonly db: DataSource,
    private readonly batches: BatchRepository,
    private readonly files: FileStore,
    @Inject(Client) private readonly temporal: Client,
    private readonly metrics: Metrics,
    private readonly quotas: TenantQuotas,
    private readonly providerKeys: ProviderKeyStore,
  ) {}

  /**
   * Everything checkable now is checked now (fail fast); the row is written first, then the
   * workflow is started under the batch's id, so Postgres always knows every batch.
   */
  async create(
    tenantId: string,
    body: unknown,
    headers: { provider?: string; idempotencyKey?: string; providerKey?: string },
  ) {
    const request = parseCreateBatch(
      body,
      this.config.batches.completionWindows,
      this.config.batches.defaultCompletionWindow,
    );
    const { provider, providerKey } = headers;
    const idempotency = idempotencyOf(headers.idempotencyKey, request, provider, providerKey);
    return this.createBatch(tenantId, request, { provider, idempotency, providerKey });
  }

  /**
   * Creates a checked request's batch: `create` above, and the retry of a batch's failed
   * requests (batch-retry.service.ts), which brings its own idempotency fingerprint.
   */
  async createBatch(
    tenantId: string,
    request: CreateBatchRequest,
    headers: { provider?: string; idempotency: Idempotency | null; providerKey?: string },
  ) {
    const { idempotency, providerKey } = headers;
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
    // Upstreams the tenant may not pin answer exactly as unknown ones: nothing tells them apart.
    const allowed = provider ? await this.quotas.allowedUpstreams(tenantId) : null;
    const known = providerNames(this.config).filter((name) => allowed === null || allowed.includes(name));
    if (provider && !known.includes(provider)) {
      throw invalidRequest(
        `Unknown provider '${echo(provider)}'. Configured: ${known.join(', ') || 'none'}.`,
        headers.provider ? 'x-barge-provider' : `metadata.${PROVIDER_METADATA_KEY}`,
        'invalid_value',
      );
    }
    if (providerKey !== undefined) this.checkProviderKey(provider);

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
      const inserted = await this.db.transaction(async (tx) => {
        // First: the tenant's row lock makes the count and this insert one step (429 over quota).
        await this.quotas.admitBatch(tx, tenantId);
        if (!(await this.files.holdForBatch(tx, tenantId, file.id))) return false;
        await this.batches.insert(batch, tx);
        // Sealed, in the batch's own transaction: no batch runs without the key it was sent with.
        if (providerKey !== undefined)
          await this.providerKeys.holdForBatch(tx, batch.id, provider!, providerKey);
        return true;
      });
      if (!inserted) throw notFound(`No such File object: ${request.inputFileId}`, 'input_file_id'); // deleted meanwhile
    } catch (err) {
      // Two creates raced with the same Idempotency-Key: the first one wins (the second may
      // also have found the first's batch filling the tenant's last active slot).
      const quotaRefusal = err instanceof OpenAIError && err.status === 429;
      if (idempotency && (err instanceof QueryFailedError || quotaRefusal)) {
        const existing = await this.batches.findByIdempotencyKey(tenantId, idempotency.key);
        if (existing) return presentBatch(replay(existing, idempotency));
      }
      throw err;
    }
    try {
      await startBatchWorkflow(this.temporal, this.config, batch);
    } catch (err) {
      // The start may have reached Temporal although it threw (a timeout on the answer):
      // a workflow that exists keeps its row; only a batch with no workflow is removed.
      if (await this.workflowExists(batch.id)) {
        this.logger.warn(`starting ${batch.id} reported ${(err as Error).message}, but its workflow runs`);
      } else {
        this.logger.error(`could not start the workflow of ${batch.id}: ${(err as Error).message}`);
        await this.batches.remove(batch.id).catch(() => undefined); // else the reconciler starts it
        throw serviceUnavailable('The batch could not be started right now; please retry.');
      }
    }
    this.metrics.transition('validating');
    return presentBatch((await this.batches.find(batch.id)) ?? batch);
  }

  /**
   * A key sent with x-barge-provider-key is for one upstream, the one the batch is pinned to:
   * a batch routed by its model could fall back to another provider, which must never see it.
   */
  checkProviderKey(provider: string | null): void {
    if (!this.providerKeys.configured) {
      throw new OpenAIError(
        503,
        'Provider keys are not configured on this server: its operator must set secrets.encryptionKey (BARGE_SECRETS_ENCRYPTION_KEY).',
        'server_error',
        PROVIDER_KEY_HEADER,
        'provider_keys_not_configured',
        { 'x-should-retry': 'false' },
      );
    }
    if (provider === null) {
      throw invalidRequest(
        `The ${PROVIDER_KEY_HEADER} header needs the upstream it is for: pin one with x-barge-provider ` +
          `or metadata.${PROVIDER_METADATA_KEY}, and the key is used there only.`,
        PROVIDER_KEY_HEADER,
        'missing_required_parameter',
      );
    }
  }

  /** Whether Temporal knows a workflow for this batch; true when that cannot be told (keep the row). */
  private async workflowExists(id: string): Promise<boolean> {
    return (await batchWorkflowStatus(this.temporal, id).catch(() => 'unknown')) !== null;
  }

  /** `tenantId` null: any tenant's batch (an admin key). */
  async get(tenantId: string | null, id: string) {
    return presentBatch(await this.find(tenantId, id));
  }

  async list(tenantId: string | null, page: PageQuery) {
    return toListObject(await this.batches.list(tenantId, page), presentBatch);
  }

  /**
   * Asks the workflow to cancel (an Update: the workflow alone moves the batch to
   * `cancelling`, and answers once it has) and presents the batch as it is then. A batch that
   * is finalizing or has ended answers 409.
   */
  async cancel(tenantId: string, id: string) {
    const batch = await this.find(tenantId, id);
    if (batch.status === 'cancelling') return presentBatch(batch);
    this.assertCancellable(batch);
    try {
      await this.temporal.workflow.getHandle(id).executeUpdate(cancelUpdate);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        if (err.cause.type === NOT_CANCELLABLE) throw conflict(err.cause.message, 'batch_not_cancellable');
      }
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // The workflow ended between our read and the update: report the state it ended in.
      this.assertCancellable(await this.find(tenantId, id));
      throw serviceUnavailable('The batch is being recovered; retry the cancel shortly.');
    }
    return presentBatch(await this.find(tenantId, id));
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

  private async find(tenantId: string | null, id: string): Promise<BatchRecord> {
    const batch = await this.batches.findForTenant(tenantId, id);
    if (!batch) throw notFound(`No such Batch object: ${echo(id)}`, 'batch_id');
    return batch;
  }
}
