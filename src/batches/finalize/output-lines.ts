import { newId } from '../../common/ids';
import type { UpstreamResult } from '../../upstreams/upstream-gateway';

/** Token usage as a batch counts it, read from any endpoint's `usage` object. */
export interface TokenUsage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

const ZERO: TokenUsage = { inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Chat/completions/embeddings say prompt/completion tokens; the Responses API says input/output. */
export function usageOf(body: unknown): TokenUsage {
  const usage = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (!usage || typeof usage !== 'object') return ZERO;
  const details = (key: string) => (usage[key] ?? {}) as Record<string, unknown>;
  return {
    inputTokens: num(usage.input_tokens ?? usage.prompt_tokens),
    cachedTokens: num(
      details('input_tokens_details').cached_tokens ?? details('prompt_tokens_details').cached_tokens,
    ),
    outputTokens: num(usage.output_tokens ?? usage.completion_tokens),
    reasoningTokens: num(
      details('output_tokens_details').reasoning_tokens ??
        details('completion_tokens_details').reasoning_tokens,
    ),
  };
}

/** One line of the output or error file, in OpenAI's format, and whether it counts as completed. */
export function outcomeLine(
  customId: string,
  result: UpstreamResult,
): { ok: boolean; output: string; usage: TokenUsage } {
  const id = newId('batch_req_');
  if (result.kind === 'http') {
    const ok = result.status >= 200 && result.status < 300;
    const output = JSON.stringify({
      id,
      custom_id: customId,
      response: { status_code: result.status, request_id: result.upstreamRequestId ?? id, body: result.body },
      error: null,
    });
    return { ok, output, usage: ok ? usageOf(result.body) : ZERO };
  }
  return { ok: false, output: errorLine(customId, result.code, result.message, id), usage: ZERO };
}

/** An error-file line for a request that never got an HTTP answer. */
export function errorLine(customId: string, code: string, message: string, id = newId('batch_req_')): string {
  return JSON.stringify({ id, custom_id: customId, response: null, error: { code, message } });
}

export const UNFINISHED = {
  cancelled: {
    code: 'batch_cancelled',
    message: 'This request was not executed because the batch was cancelled.',
  },
  expired: {
    code: 'batch_expired',
    message: 'This request could not be executed before the completion window expired.',
  },
  completed: { code: 'internal_error', message: 'This request has no recorded outcome.' },
} as const;
