import { AbortHub } from '../../src/upstreams/abort';

/**
 * The listener limit Node keeps on an EventTarget (events.getMaxListeners refuses the signals
 * of Jest's sandbox, so it is read where Node keeps it).
 */
function getMaxListeners(target: object): unknown {
  const key = Object.getOwnPropertySymbols(target).find(
    (s) => s.description === 'events.maxEventTargetListeners',
  );
  return key === undefined ? undefined : (target as Record<symbol, unknown>)[key];
}

describe('AbortHub', () => {
  it("gives a chunk's calls one shared signal, aborted by the chunk's signal, with no listener limit", () => {
    const hub = new AbortHub();
    const chunk = new AbortController();
    const signal = hub.follow(chunk.signal);
    expect(hub.follow(chunk.signal)).toBe(signal);
    // One listener per call in flight: undici's, a backoff's. Node warns past 10 otherwise.
    expect(getMaxListeners(signal)).toBe(0);
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
    expect(getMaxListeners(wait)).toBe(0);

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
