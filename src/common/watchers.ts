/**
 * The callbacks waiting on one trigger (a signal's abort, a timer), held in one Set so that
 * however many wait, the trigger is armed once and stopping one watch is O(1). Used where a
 * listener or a timer per waiter cost a walk of a listener list, or a Timeout, per request.
 */
export class Watchers {
  private readonly watching = new Set<() => void>();

  /** `onEmpty` runs when the last watch still waiting is stopped (to disarm the trigger). */
  constructor(private readonly onEmpty?: () => void) {}

  /** Adds `fn`; the returned function stops this watch (the same `fn` may watch twice). */
  add(fn: () => void): () => void {
    const entry = (): void => fn();
    this.watching.add(entry);
    return () => {
      if (this.watching.delete(entry) && this.watching.size === 0) this.onEmpty?.();
    };
  }

  /** Runs every watch once, in the order added; one stopped by an earlier one is not run. */
  fire(): void {
    for (const watch of this.watching) watch();
    this.watching.clear();
  }
}
