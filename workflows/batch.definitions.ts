import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * The batch workflow's interface: its input, and the messages the API and operators send it.
 * Kept apart from the workflow code so the API imports only definitions.
 */

export interface BatchWorkflowInput {
  batchId: string;
  /** Epoch ms when the completion window ends; absolute, so continue-as-new keeps the clock. */
  expiresAt: number;
  /** Chunk activities in flight at least (a batch whose upstreams take more gets more). */
  window: number;
  /** Chunk activities in flight at most. Absent in first-release inputs: then `window`. */
  maxWindow?: number;
  /** Task queue of the workers that call upstream models. */
  upstreamTaskQueue: string;
  /** First release's continue-as-new state (position only; see legacy-batch.workflow.ts). */
  progress?: { chunkCount: number; nextChunk: number };
  /** This release's continue-as-new state. */
  carried?: CarriedState;
}

/** What a run hands the next at continue-as-new: everything, in flight included. */
export interface CarriedState {
  chunkCount: number;
  /** The next chunk never dispatched. */
  nextChunk: number;
  /** Chunks the previous run had in flight: the next run dispatches them first, without waiting. */
  pending: number[];
  /** The window the batch runs with. */
  window: number;
  cancelRequested: boolean;
}

export interface BatchProgress {
  phase: 'validating' | 'in_progress' | 'finalizing' | 'done';
  chunkCount: number;
  nextChunk: number;
  chunksInFlight: number;
  cancelRequested: boolean;
}

/**
 * Cancel, as the API sends it: an Update, so the workflow alone moves the batch to
 * `cancelling` and answers with the real state. Its validator refuses a batch that is
 * finalizing or done (nothing is written to history then); the API answers 409.
 */
export const cancelUpdate = defineUpdate<{ status: string }>('cancel');

/** The first release's cancel; still handled, for clients of that release's API. */
export const cancelBatchSignal = defineSignal('cancelBatch');

export const progressQuery = defineQuery<BatchProgress>('progress');

/** The Update's rejection: the batch can no longer be cancelled. */
export const NOT_CANCELLABLE = 'BatchNotCancellable';
