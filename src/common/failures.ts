/**
 * Failures of the batch machinery, each knowing whether trying again can help. Activities turn
 * them into Temporal ApplicationFailures with the same type and retryability (activities/
 * failure.ts), so a deterministic failure ends at once instead of retrying until the batch
 * expires, while an infrastructure fault retries with backoff within its activity's bound.
 */
export abstract class BargeFailure extends Error {
  /** Stable name, used as the Temporal failure type and in logs and metrics. */
  abstract readonly type: string;
  abstract readonly retryable: boolean;
}

/** The batch row does not exist (a ghost workflow, or a row removed after a failed create). */
export class BatchNotFound extends BargeFailure {
  readonly type = 'BatchNotFound';
  readonly retryable = false;
  constructor(readonly batchId: string) {
    super(`batch ${batchId} not found`);
  }
}

/** The batch is in a state this step cannot run in; replaying the step will not change that. */
export class InvalidBatchState extends BargeFailure {
  readonly type = 'InvalidBatchState';
  readonly retryable = false;
}

/** Input that can never be processed (e.g. a chunk whose bytes no longer parse). */
export class PoisonInput extends BargeFailure {
  readonly type = 'PoisonInput';
  readonly retryable = false;
}

/** Postgres, MinIO or Temporal misbehaving: worth retrying with backoff. */
export class InfrastructureFault extends BargeFailure {
  readonly type = 'InfrastructureFault';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Another attempt holds the same work (a finalize, a chunk): retry once it lets go. */
export class WorkBusy extends BargeFailure {
  readonly type = 'WorkBusy';
  readonly retryable = true;
}
