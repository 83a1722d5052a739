import type { BargeConfig } from '../config/config';
import type { Health } from './circuit-breaker';
import type { AttemptResponse } from './http-upstream';

export type Verdict = 'success' | 'retry' | 'final';

/** Statuses worth another attempt, as the OpenAI SDKs decide it. */
const RETRYABLE = new Set([408, 409, 429]);

/**
 * What to do with an HTTP answer. The upstream's `x-should-retry` wins over the status,
 * as in the OpenAI SDKs (a 409 "cannot cancel" says false; an overloaded proxy may say true).
 */
export function verdictFor(status: number, shouldRetry: string | undefined): Verdict {
  if (status >= 200 && status < 300) return 'success';
  if (shouldRetry === 'true') return 'retry';
  if (shouldRetry === 'false') return 'final';
  return RETRYABLE.has(status) || status >= 500 ? 'retry' : 'final';
}

/** Retry, or done: answers by status; no answer at all is worth retrying, unless it was too large. */
export function verdictOf(attempt: AttemptResponse): Verdict {
  if (attempt.kind === 'response') return verdictFor(attempt.status, attempt.headers['x-should-retry']);
  return attempt.code === 'upstream_response_too_large' ? 'final' : 'retry';
}

/** What an attempt says about the upstream: only no answer at all and 5xx count against it. */
export function healthOf(attempt: AttemptResponse): Health {
  if (attempt.kind === 'no-answer')
    return attempt.code === 'upstream_response_too_large' ? 'healthy' : 'unhealthy';
  return attempt.status >= 500 ? 'unhealthy' : 'healthy';
}

/** 429 and 503 say "too much": they slow the upstream down, not just this request. */
export const isOverload = (status: number): boolean => status === 429 || status === 503;

/**
 * The delay an upstream asks for: `retry-after-ms` (OpenAI's), else `retry-after` in seconds
 * or as an HTTP date. Null when absent or unreadable.
 */
export function retryAfterMs(
  headers: Readonly<Record<string, string | undefined>>,
  now: number,
): number | null {
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Number(ms);
  const after = headers['retry-after'];
  if (after === undefined) return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(after)) return Number(after) * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** Attempt budget and backoff: exponential with full jitter, never shorter than Retry-After. */
export class RetryPolicy {
  readonly maxAttempts: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  readonly retryAfterCapMs: number;

  constructor(
    routing: BargeConfig['routing'],
    private readonly random: () => number = Math.random,
  ) {
    this.maxAttempts = routing.maxAttempts;
    this.baseMs = routing.backoffBaseMs;
    this.capMs = routing.backoffMaxMs;
    this.retryAfterCapMs = routing.retryAfterMaxMs;
  }

  /** The first backoff step's ceiling. */
  get baseDelayMs(): number {
    return this.baseMs;
  }

  /**
   * Delay before the next attempt after `failures` failed ones in this call. Full jitter
   * spreads the retries of a burst that failed together instead of replaying the burst.
   */
  delayMs(failures: number, retryAfter: number | null): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(failures - 1, 30));
    const backoff = Math.floor(this.random() * ceiling);
    return retryAfter === null ? backoff : Math.max(Math.min(retryAfter, this.retryAfterCapMs), backoff);
  }
}
