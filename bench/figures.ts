/** Figures derived from the simulator's per-second history. */
import type { SecondStats } from '../src/simulator/server';

/**
 * Average of a per-second level over the middle of the run, from the `from` to the `to`
 * fraction of its span (10th to 90th percentile by default), so ramp-up and tail are left out.
 * Seconds missing from the history had nothing in flight and count as 0.
 */
export function sustained(
  perSecond: SecondStats[],
  key: 'inFlight' | 'serving',
  from = 0.1,
  to = 0.9,
): number | null {
  if (perSecond.length === 0) return null;
  const first = perSecond[0].t;
  const span = perSecond[perSecond.length - 1].t - first + 1;
  const lo = first + Math.floor(span * from);
  const hi = first + Math.max(Math.floor(span * from), Math.ceil(span * to) - 1);
  const byTime = new Map(perSecond.map((s) => [s.t, s[key]]));
  let sum = 0;
  for (let t = lo; t <= hi; t++) sum += byTime.get(t) ?? 0; // a missing second had nothing in flight
  return sum / (hi - lo + 1);
}
