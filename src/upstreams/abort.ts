/** What call() rejects with when its signal aborts: an Error named AbortError, like fetch's. */
export function abortError(signal?: AbortSignal): Error {
  const error = new Error('The upstream call was aborted', { cause: signal?.reason });
  error.name = 'AbortError';
  return error;
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

export interface AbortLink {
  signal: AbortSignal;
  dispose(): void;
}

/**
 * Gives each call its own AbortSignal, aborted when the caller's signal aborts or when the
 * gateway closes. A chunk activity passes the same signal to hundreds of concurrent calls;
 * listening on it once per call (and once more inside http.request) would pile up listeners
 * and trip Node's leak warning. Here each shared signal gets a single listener.
 */
export class AbortHub {
  private readonly byParent = new Map<
    AbortSignal,
    { children: Set<AbortController>; listener: () => void }
  >();
  private readonly live = new Set<AbortController>();

  link(parent: AbortSignal): AbortLink {
    const child = new AbortController();
    if (parent.aborted) {
      child.abort(parent.reason);
      return { signal: child.signal, dispose: () => undefined };
    }
    let entry = this.byParent.get(parent);
    if (!entry) {
      const children = new Set<AbortController>();
      const listener = (): void => {
        this.byParent.delete(parent);
        for (const c of children) c.abort(parent.reason);
      };
      entry = { children, listener };
      this.byParent.set(parent, entry);
      parent.addEventListener('abort', listener, { once: true });
    }
    const { children, listener } = entry;
    children.add(child);
    this.live.add(child);
    return {
      signal: child.signal,
      dispose: () => {
        this.live.delete(child);
        children.delete(child);
        if (children.size === 0 && this.byParent.get(parent)?.children === children) {
          this.byParent.delete(parent);
          parent.removeEventListener('abort', listener);
        }
      },
    };
  }

  /** Aborts every linked call (the gateway is closing). */
  abortAll(reason: unknown): void {
    for (const child of this.live) child.abort(reason);
  }
}

/** Resolves after `ms`; rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
