import { onAbort } from '../../upstreams/abort';

/**
 * A worker-wide budget of bytes held in memory, first come first served: the chunk activities
 * of every batch on a worker share one (their input), the answers being read and waiting to
 * be recorded share another, so what is in memory at once stays bounded whatever the number
 * of batches, windows and activity slots. A claim larger than the whole budget is let in
 * alone (when nothing else is held), so it can never wait forever.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: { bytes: number; admit: () => void }[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Takes `bytes` now if they fit and nobody waits before them: the function that gives them back, else null. */
  tryAcquire(bytes: number): (() => void) | null {
    return this.waiting.length === 0 && this.fits(bytes) ? this.charge(bytes) : null;
  }

  /** Waits until `bytes` fit; resolves with the function that gives them back. */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const granted = this.tryAcquire(bytes);
      if (granted) {
        resolve(granted);
        return;
      }
      const grant = (): void => resolve(this.charge(bytes));
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const unwatch = signal
        ? onAbort(signal, () => {
            const at = this.waiting.indexOf(entry);
            if (at !== -1) this.waiting.splice(at, 1);
            reject(signal.reason ?? new Error('aborted'));
            this.admit();
          })
        : undefined;
      const entry = {
        bytes,
        admit: () => {
          unwatch?.();
          grant();
        },
      };
      this.waiting.push(entry);
    });
  }

  /**
   * Takes `bytes` at once, over the limit if need be, for memory already in use that cannot
   * wait (an answer already read): later claims then wait until it is given back.
   */
  charge(bytes: number): () => void {
    this.take(bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(bytes);
    };
  }

  /** charge() without its once-only release, for a holder that counts what it holds itself. */
  take(bytes: number): void {
    this.used += bytes;
  }

  /** Gives back `bytes` taken earlier; whoever waits and now fits is let in. */
  give(bytes: number): void {
    this.used -= bytes;
    this.admit();
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limit || this.used === 0;
  }

  private admit(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0].bytes)) this.waiting.shift()!.admit();
  }
}
