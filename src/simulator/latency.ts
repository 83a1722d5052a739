import { MAX_DELAY_MS, type LatencySpec } from './options';

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: a tiny 32-bit PRNG. Not for anything secret; chosen because a seed fully
 * determines the sequence, which is what makes a faulty run replayable.
 */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal deviate (Box-Muller); 1 - u keeps log() away from 0. */
export function normal(random: Random): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Returns a function drawing one delay in whole milliseconds per call. */
export function latencySampler(spec: LatencySpec, random: Random): () => number {
  switch (spec.kind) {
    case 'fixed': {
      const ms = Math.round(spec.ms);
      return () => ms;
    }
    case 'uniform': {
      const { minMs, maxMs } = spec;
      return () => Math.round(minMs + (maxMs - minMs) * random());
    }
    case 'lognormal': {
      // The median of exp(N(mu, sigma)) is exp(mu), so mu = ln(median) keeps the median as given.
      const { medianMs, sigma } = spec;
      return () => Math.min(MAX_DELAY_MS, Math.round(medianMs * Math.exp(sigma * normal(random))));
    }
  }
}
