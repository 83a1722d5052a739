import { newId } from '../../common/ids';
import { tokenCount } from '../../upstreams/token-estimate';
import type { UpstreamResult } from '../../upstreams/upstream-gateway';

/** Token usage as a batch counts it, read from any endpoint's `usage` object. */
export interface TokenUsage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

const ZERO: TokenUsage = { inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };

const num = (v: unknown): number => tokenCount(v) ?? 0;

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

/** A request's final outcome as the upstream gateway reports it (not `unanswered`). */
export type FinalResult = Exclude<UpstreamResult, { kind: 'unanswered' }>;

/** Code of an answer that could not be written into the output line (e.g. nested too deep). */
export const INVALID_UPSTREAM_RESPONSE = 'upstream_invalid_response';

/**
 * One line of the output or error file, in OpenAI's format, and whether it counts as
 * completed. The upstream's answer is embedded as the text it sent when that is a single line
 * of JSON (no parse-and-serialize round trip); otherwise it is serialized from its parsed form,
 * and an answer that cannot be (nested beyond what JSON.stringify walks) becomes this
 * request's error line. Never throws for any answer.
 */
export function outcomeLine(
  customId: string,
  result: FinalResult,
): { ok: boolean; output: string; usage: TokenUsage } {
  const id = newId('batch_req_');
  if (result.kind === 'error') {
    return { ok: false, output: errorLine(customId, result.code, result.message, id), usage: ZERO };
  }
  const ok = result.status >= 200 && result.status < 300;
  const body = embeddableBody(result);
  if (body === null) {
    const message = `The upstream answered HTTP ${result.status} with a body that cannot be written as JSON.`;
    return { ok: false, output: errorLine(customId, INVALID_UPSTREAM_RESPONSE, message, id), usage: ZERO };
  }
  const head = JSON.stringify({ id, custom_id: customId });
  const requestId = JSON.stringify(result.upstreamRequestId ?? id);
  const output = `${head.slice(0, -1)},"response":{"status_code":${result.status},"request_id":${requestId},"body":${body}},"error":null}`;
  return { ok, output, usage: ok ? usageOf(result.body) : ZERO };
}

/** The answer's body as JSON text for the output line, or null when it cannot be. */
function embeddableBody(result: Extract<FinalResult, { kind: 'http' }>): string | null {
  const { body } = result;
  const text = result.text.trim();
  // Parsed as JSON (an object or array; a string body is the raw text of a non-JSON answer)
  // and on one line: the text itself is the JSON to embed.
  if (typeof body === 'object' && body !== null && !/[\n\r]/.test(text)) return text;
  try {
    return JSON.stringify(body ?? null);
  } catch {
    return null;
  }
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
  failed: {
    code: 'batch_failed',
    message: 'This request was not executed because the batch failed (see the batch errors).',
  },
} as const;
