import { Watchers } from '../common/watchers';

/** What call() rejects with when its signal aborts: an Error named AbortError, like fetch's. */
export function abortError(signal?: AbortSignal): Error {
  const error = new Error('The upstream call was aborted', { cause: signal?.reason });
  error.name = 'AbortError';
  return error;
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * The signals a call runs under: aborted when the caller's signal aborts or when the gateway
 * closes. A chunk passes the same signal (and the same hold) to every one of its calls, so the
 * derived signals are made once per caller's signal and shared by its calls, not made per call:
 * an AbortController and an AbortSignal.any per call were a tenth of the worker's allocations
 * at 0 ms upstream latency. What a call waits on watches them through onAbort(), not with a
 * listener of its own.
 */
export class AbortHub {
  private readonly closing = new AbortController();
  private readonly follows = new WeakMap<AbortSignal, AbortSignal>();
  private readonly holds = new WeakMap<AbortSignal, WeakMap<AbortSignal, AbortSignal>>();

  /** Aborted when `parent` aborts or the gateway closes. */
  follow(parent: AbortSignal): AbortSignal {
    let signal = this.follows.get(parent);
    if (!signal) {
      signal = AbortSignal.any([parent, this.closing.signal]);
      this.follows.set(parent, signal);
    }
    return signal;
  }

  /** follow(parent), also aborted when `hold` aborts. */
  followWithHold(parent: AbortSignal, hold: AbortSignal): AbortSignal {
    let byHold = this.holds.get(parent);
    if (!byHold) {
      byHold = new WeakMap();
      this.holds.set(parent, byHold);
    }
    let signal = byHold.get(hold);
    if (!signal) {
      signal = AbortSignal.any([this.follow(parent), hold]);
      byHold.set(hold, signal);
    }
    return signal;
  }

  /** Aborts every call (the gateway is closing). */
  abortAll(reason: unknown): void {
    this.closing.abort(reason);
  }
}

/**
 * Runs `fn` once when `signal` aborts; the returned function stops watching. However many
 * watch one signal, it carries a single listener: Node's EventTarget finds a listener (to
 * add it without duplicates, or to remove it) by walking its list, so with a listener per
 * call every call of a chunk paid for every other one in flight or queued.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    // As events.addAbortListener does: an aborted signal fires no more events.
    queueMicrotask(fn);
    return () => undefined;
  }
  let watchers = watched.get(signal);
  if (!watchers) {
    const created = new Watchers();
    watched.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        watched.delete(signal);
        created.fire();
      },
      { once: true },
    );
    watchers = created;
  }
  return watchers.add(fn);
}

const watched = new WeakMap<AbortSignal, Watchers>();

/** Resolves after `ms`; rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const unwatch = onAbort(signal, () => {
      clearTimeout(timer);
      reject(abortError(signal));
    });
    const timer = setTimeout(() => {
      unwatch();
      resolve();
    }, ms);
  });
}
