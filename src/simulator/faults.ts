/**
 * Fault injection: the global fault rates, and the per-request `simulate` directive that
 * lets one request script its own failures (fail twice with 429, then succeed...).
 */
import type { Random } from './latency';
import { MAX_DELAY_MS, type SimulatorOptions } from './options';
import { ApiError, type JsonObject } from './responses';
import type { RateLimitCause } from './stats';

export type FailMode = 'status' | 'reset' | 'hang';

export interface Directive {
  /** The first `failTimes` attempts of the same request fail; absent means no scripted failure. */
  failTimes?: number;
  failStatus: number;
  failMode: FailMode;
  retryAfterMs?: number;
  failBody?: string;
  latencyMs?: number;
}

/** What the simulator does with a request once it is parsed and validated. */
export type Outcome =
  | { kind: 'answer' }
  | {
      kind: 'status';
      status: number;
      retryAfterMs?: number;
      message?: string;
      /** Error type in the envelope, when not the one the status implies. */
      errorType?: string;
      /** Set on 429s: what caused it, for /_sim/stats. */
      cause?: RateLimitCause;
    }
  | { kind: 'reset' }
  | { kind: 'hang' };

export const ANSWER: Outcome = Object.freeze({ kind: 'answer' });

const bad = (field: string, expected: string): ApiError =>
  new ApiError(
    400,
    `Invalid 'simulate.${field}': expected ${expected}.`,
    `simulate.${field}`,
    'invalid_value',
  );

function optionalNumber(directive: JsonObject, field: string, min: number, max: number): number | undefined {
  const value = directive[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw bad(field, `a number between ${min} and ${max}`);
  }
  return value;
}

/**
 * Validates `body.simulate`. A typo must fail loudly: a test whose directive is silently
 * ignored would pass for the wrong reason.
 */
export function parseDirective(value: unknown): Directive | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, "Invalid 'simulate': expected an object.", 'simulate', 'invalid_type');
  }
  const raw = value as JsonObject;
  for (const key of Object.keys(raw)) {
    if (!DIRECTIVE_KEYS.has(key)) throw bad(key, `one of ${[...DIRECTIVE_KEYS].join(', ')} (unknown field)`);
  }
  const failMode = raw.fail_mode ?? 'status';
  if (failMode !== 'status' && failMode !== 'reset' && failMode !== 'hang')
    throw bad('fail_mode', '"status", "reset" or "hang"');
  const failStatus = optionalNumber(raw, 'fail_status', 400, 599) ?? 500;
  if (!Number.isInteger(failStatus)) throw bad('fail_status', 'an integer HTTP status between 400 and 599');
  const failBody = raw.fail_body;
  if (failBody !== undefined && failBody !== null && typeof failBody !== 'string')
    throw bad('fail_body', 'a string');
  const failTimes = optionalNumber(raw, 'fail_times', 0, Number.MAX_SAFE_INTEGER);
  // Failure details without a count would otherwise be ignored; make the omission visible.
  const detail = ['fail_status', 'fail_mode', 'retry_after_ms', 'fail_body'].find((key) => raw[key] != null);
  if (failTimes === undefined && detail !== undefined) {
    throw bad('fail_times', `a count (e.g. 1e9 to fail every attempt) whenever simulate.${detail} is set`);
  }
  return {
    failTimes,
    failStatus,
    failMode,
    retryAfterMs: optionalNumber(raw, 'retry_after_ms', 0, MAX_DELAY_MS),
    failBody: failBody ?? undefined,
    latencyMs: optionalNumber(raw, 'latency_ms', 0, MAX_DELAY_MS),
  };
}

const DIRECTIVE_KEYS = new Set([
  'fail_times',
  'fail_status',
  'fail_mode',
  'retry_after_ms',
  'fail_body',
  'latency_ms',
]);

/** The failure a directive asks for, on an attempt it applies to. */
export function directedFault(directive: Directive, defaultRetryAfterMs: number): Outcome {
  if (directive.failMode !== 'status') return { kind: directive.failMode };
  const status = directive.failStatus;
  const advertisesRetry = status === 429 || status === 503;
  return {
    kind: 'status',
    status,
    retryAfterMs: advertisesRetry ? (directive.retryAfterMs ?? defaultRetryAfterMs) : undefined,
    message: directive.failBody,
    cause: status === 429 ? 'directive' : undefined,
  };
}

/** Draws the global fault for one request; a single draw keeps the PRNG sequence per request fixed. */
export function globalFault(options: SimulatorOptions, random: Random): Outcome {
  const { errorRate, rateLimitRate, resetRate, hangRate } = options;
  if (errorRate + rateLimitRate + resetRate + hangRate === 0) return ANSWER;
  let u = random();
  if ((u -= errorRate) < 0) return { kind: 'status', status: 500 };
  if ((u -= rateLimitRate) < 0)
    return { kind: 'status', status: 429, retryAfterMs: options.retryAfterMs, cause: 'global' };
  if ((u -= resetRate) < 0) return { kind: 'reset' };
  if ((u -= hangRate) < 0) return { kind: 'hang' };
  return ANSWER;
}
