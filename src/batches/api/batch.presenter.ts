import type { BatchRecord } from '../../database/entities/batch.entity';

const seconds = (d: Date | null): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

/** The Batch object exactly as OpenAI returns it. */
export function presentBatch(b: BatchRecord) {
  return {
    id: b.id,
    object: 'batch' as const,
    endpoint: b.endpoint,
    model: b.model,
    errors: b.errors ? { object: 'list' as const, data: b.errors.data } : null,
    input_file_id: b.inputFileId,
    completion_window: b.completionWindow,
    status: b.status,
    output_file_id: b.outputFileId,
    error_file_id: b.errorFileId,
    created_at: seconds(b.createdAt),
    in_progress_at: seconds(b.inProgressAt),
    expires_at: seconds(b.expiresAt),
    finalizing_at: seconds(b.finalizingAt),
    completed_at: seconds(b.completedAt),
    failed_at: seconds(b.failedAt),
    expired_at: seconds(b.expiredAt),
    cancelling_at: seconds(b.cancellingAt),
    cancelled_at: seconds(b.cancelledAt),
    request_counts: { total: b.requestTotal, completed: b.requestCompleted, failed: b.requestFailed },
    usage: {
      input_tokens: b.inputTokens,
      input_tokens_details: { cached_tokens: b.cachedTokens },
      output_tokens: b.outputTokens,
      output_tokens_details: { reasoning_tokens: b.reasoningTokens },
      total_tokens: b.inputTokens + b.outputTokens,
    },
    metadata: b.metadata,
  };
}

export type BatchObject = ReturnType<typeof presentBatch>;
