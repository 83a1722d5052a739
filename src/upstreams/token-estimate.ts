/**
 * Token counts for the tokens-per-minute limits: an estimate before sending (there is no
 * tokenizer here) and the upstream's own count afterwards, which corrects the estimate.
 */

const CHARS_PER_TOKEN = 4;

/** Where a request's input text lives, across the five batch endpoints. */
const INPUT_FIELDS = ['messages', 'prompt', 'input', 'instructions'];

/** The output budget a request grants itself, first match wins. */
const OUTPUT_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'];

/**
 * About chars/4 of the input text (token-id arrays count one each). The walk keeps its own
 * stack instead of recursing, so no body, however deeply nested, can overflow the call stack.
 */
export function estimateInputTokens(body: Record<string, unknown>): number {
  let chars = 0;
  let tokens = 0;
  const pending: unknown[] = INPUT_FIELDS.map((field) => body[field]);
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') chars += value.length;
    else if (typeof value === 'number') tokens += 1;
    else if (Array.isArray(value)) for (const item of value) pending.push(item);
    else if (typeof value === 'object' && value !== null)
      for (const item of Object.values(value)) pending.push(item);
  }
  return Math.ceil(chars / CHARS_PER_TOKEN) + tokens;
}

/**
 * The output budget a request grants itself (max_completion_tokens, max_tokens or
 * max_output_tokens, times `n`), or null when it sets none.
 */
export function outputBudget(body: Record<string, unknown>): number | null {
  for (const field of OUTPUT_FIELDS) {
    const value = body[field];
    if (typeof value === 'number' && value > 0) {
      const n = typeof body.n === 'number' && body.n > 1 ? Math.floor(body.n) : 1;
      return value * n;
    }
  }
  return null;
}

/** Endpoints whose answers are not generated text: they have no output tokens. */
const NO_OUTPUT_ENDPOINTS = new Set(['/v1/embeddings', '/v1/moderations']);

/**
 * The most output tokens a request may cost: its budget, or `defaultMax` when it sets none
 * (0 for embeddings and moderations, which generate no text).
 */
export function outputBound(endpoint: string, body: Record<string, unknown>, defaultMax: number): number {
  if (NO_OUTPUT_ENDPOINTS.has(endpoint)) return 0;
  return outputBudget(body) ?? defaultMax;
}

/** The input estimate plus the output budget: what the limits and the enqueued-token quota hold. */
export function estimateTokens(body: Record<string, unknown>): number {
  return Math.max(1, estimateInputTokens(body) + (outputBudget(body) ?? 0));
}

/**
 * No one request uses more tokens than this; a larger count in an answer is not believed. A
 * million lines at it still sum far below Postgres' bigint.
 */
export const MAX_REPORTED_TOKENS = 1e12;

/**
 * A token count as an upstream reports it in `usage`, if it is one: a whole number from 0 to
 * MAX_REPORTED_TOKENS; else null. The one reading of counts from answers, which are untrusted:
 * a fraction or a huge number stored as a bigint would fail every attempt to record the
 * answers around it, and charged to a tokens-per-minute bucket would stall it.
 */
export function tokenCount(value: unknown): number | null {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_REPORTED_TOKENS
    ? (value as number)
    : null;
}

/** Tokens the upstream reports in `usage` (chat/completions/embeddings or responses shape). */
export function reportedTokens(body: unknown): number | null {
  if (typeof body !== 'object' || body === null) return null;
  const usage = (body as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const total = tokenCount(u.total_tokens);
  if (total !== null) return total;
  const input = tokenCount(u.prompt_tokens) ?? tokenCount(u.input_tokens);
  const output = tokenCount(u.completion_tokens) ?? tokenCount(u.output_tokens) ?? 0;
  return input === null ? null : input + output;
}
