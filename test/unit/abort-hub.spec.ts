import { AbortHub, onAbort, sleep } from '../../src/upstreams/abort';

/**
 * The 'abort' listeners on a signal, read where Node keeps them (events.getEventListeners
 * refuses the signals of Jest's sandbox): each listener is a node of a linked list.
 */
function abortListeners(target: object): number {
  const key = Object.getOwnPropertySymbols(target).find((s) => s.description === 'kEvents');
  const events =
    key === undefined ? undefined : (target as Record<symbol, Map<string, { size: number }>>)[key];
  if (!events) throw new Error('Node keeps the listeners elsewhere now: update abortListeners()');
  return events.get('abort')?.size ?? 0;
}

describe('AbortHub', () => {
  it("gives a chunk's calls one shared signal, aborted by the chunk's signal", () => {
    const hub = new AbortHub();
    const chunk = new AbortController();
    const signal = hub.follow(chunk.signal);
    expect(hub.follow(chunk.signal)).toBe(signal);
    const other = hub.follow(new AbortController().signal);
    expect(other).not.toBe(signal);

    chunk.abort(new Error('batch cancelled'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('batch cancelled');
    expect(other.aborted).toBe(false);
  });

  it('adds the hold to the waiting signal only, and aborts everything when the gateway closes', () => {
    const hub = new AbortHub();
    const chunk = new AbortController();
    const drain = new AbortController();
    const send = hub.follow(chunk.signal);
    const wait = hub.followWithHold(chunk.signal, drain.signal);
    expect(hub.followWithHold(chunk.signal, drain.signal)).toBe(wait);

    drain.abort();
    expect(wait.aborted).toBe(true);
    expect(send.aborted).toBe(false); // calls in flight finish when a chunk drains

    const later = hub.followWithHold(new AbortController().signal, new AbortController().signal);
    hub.abortAll(new Error('the upstream gateway is closing'));
    expect(send.aborted).toBe(true);
    expect(later.aborted).toBe(true);
    // A call made after close is aborted from the start.
    expect(hub.follow(new AbortController().signal).aborted).toBe(true);
  });

  it('starts aborted for a signal aborted already', () => {
    const hub = new AbortHub();
    const chunk = new AbortController();
    chunk.abort(new Error('gone'));
    expect(hub.follow(chunk.signal).aborted).toBe(true);
  });
});

describe('onAbort', () => {
  it('runs every watcher once when the signal aborts, through one listener however many watch', () => {
    const controller = new AbortController();
    const ran: number[] = [];
    const stops = Array.from({ length: 1000 }, (_, i) => onAbort(controller.signal, () => ran.push(i)));
    expect(abortListeners(controller.signal)).toBe(1);
    for (let i = 0; i < 1000; i += 2) stops[i]();
    controller.abort();
    controller.abort();
    expect(ran).toEqual(Array.from({ length: 500 }, (_, i) => 2 * i + 1));
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('does not run a watcher that an earlier one stopped, and runs the same function once per watch', () => {
    const controller = new AbortController();
    const ran: string[] = [];
    const fn = (): number => ran.push('fn');
    let stopLater = (): void => undefined;
    onAbort(controller.signal, () => {
      ran.push('first');
      stopLater();
    });
    onAbort(controller.signal, fn);
    const stopOne = onAbort(controller.signal, fn);
    stopLater = onAbort(controller.signal, () => ran.push('stopped by first'));
    stopOne();
    controller.abort();
    expect(ran).toEqual(['first', 'fn']);
  });

  it('runs at once (in a microtask) for a signal aborted already, as events.addAbortListener does', async () => {
    const controller = new AbortController();
    controller.abort();
    let ran = 0;
    onAbort(controller.signal, () => ran++);
    expect(ran).toBe(0);
    await Promise.resolve();
    expect(ran).toBe(1);
  });

  it('lets sleep() watch a shared signal without a listener of its own', async () => {
    const controller = new AbortController();
    const sleeps = Array.from({ length: 100 }, () => sleep(60_000, controller.signal));
    expect(abortListeners(controller.signal)).toBe(1);
    await sleep(1, controller.signal); // one that ends stops watching
    controller.abort();
    const results = await Promise.allSettled(sleeps);
    expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError')).toBe(
      true,
    );
  });
});
