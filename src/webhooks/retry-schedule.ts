/**
 * When a failed webhook delivery is tried again: exponential backoff with jitter, capped, for
 * up to `giveUpAfterMs` after the first attempt (default 24 hours: about 21 attempts with the
 * defaults of 10 s doubling up to 2 h). Pure and free of Node built-ins: the delivery workflow
 * (workflows/webhook-delivery.workflow.ts) runs it in Temporal's sandbox, with the sandbox's
 * deterministic Math.random as `random`.
 */

export interface RetrySchedule {
  initialDelayMs: number;
  maxDelayMs: number;
  giveUpAfterMs: number;
}

/**
 * The wait before the next attempt after attempt number `attempt` (1-based) failed,
 * `elapsedMs` after the first attempt began; null when the delivery is given up. The last
 * attempt is placed at the end of the window rather than past it.
 */
export function retryDelayMs(
  schedule: RetrySchedule,
  attempt: number,
  elapsedMs: number,
  random: () => number = () => 0.5,
): number | null {
  const left = schedule.giveUpAfterMs - elapsedMs;
  if (left <= 0) return null;
  const base = Math.min(schedule.maxDelayMs, schedule.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  // +-20%: receivers that failed together are not all retried in the same instant.
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return Math.max(1, Math.min(jittered, left));
}
