import {
  Client,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
} from '@temporalio/client';
import type { batchWorkflow } from '../../workflows/batch.workflow';
import { BatchStatusKey, EndpointKey, TenantIdKey } from '../../workflows/search-attributes';
import type { BargeConfig } from '../config/config';
import type { BatchRecord } from '../database/entities/batch.entity';

/**
 * Starts a batch's workflow (workflow id = batch id). Idempotent: a start retried, by the API
 * or by the reconciler, finds the running workflow instead of starting a second one.
 */
export async function startBatchWorkflow(
  temporal: Client,
  config: BargeConfig,
  batch: BatchRecord,
): Promise<void> {
  await temporal.workflow.start<typeof batchWorkflow>('batchWorkflow', {
    workflowId: batch.id,
    taskQueue: config.temporal.taskQueue,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [
      {
        batchId: batch.id,
        expiresAt: batch.expiresAt.getTime(),
        window: config.batches.chunkWindow,
        maxWindow: config.batches.maxChunkWindow,
        upstreamTaskQueue: config.temporal.upstreamTaskQueue,
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

/** The batch workflow's latest run as Temporal sees it: its status name, or null when there is none. */
export async function batchWorkflowStatus(temporal: Client, batchId: string): Promise<string | null> {
  try {
    return (await temporal.workflow.getHandle(batchId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}
