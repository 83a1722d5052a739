/** Wall-clock time in epoch milliseconds; injected so breaker and pacing logic can be tested without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
