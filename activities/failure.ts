import { ApplicationFailure } from '@temporalio/common';
import { BargeFailure } from '../src/common/failures';

/**
 * Runs an activity body and hands Temporal Barge's failures with their type and
 * retryability: a BatchNotFound or PoisonInput fails the activity for good (the workflow
 * learns at once), an InfrastructureFault is retried under the activity's retry policy.
 * Anything else (cancellation included) passes through unchanged.
 */
export async function asActivity<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof BargeFailure) {
      throw ApplicationFailure.create({
        message: error.message,
        type: error.type,
        nonRetryable: !error.retryable,
        cause: error,
      });
    }
    throw error;
  }
}
