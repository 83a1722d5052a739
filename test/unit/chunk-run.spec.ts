import {
  ChunkRun,
  INTERNAL_ERROR,
  UNREADABLE_LINE,
  type ChunkJob,
} from '../../src/batches/dispatch/chunk-run';
import { ByteBudget } from '../../src/batches/dispatch/byte-budget';
import { HELD_MEMORY_PER_BYTE } from '../../src/batches/dispatch/outcome-buffer';
import type { OutcomeRecorder, RequestOutcome } from '../../src/batches/store/work.repository';
import { Metrics } from '../../src/observability/metrics';
import { parseExposition, total } from '../support/prometheus';
import { abortError } from '../../src/upstreams/abort';
import type { UpstreamCall, UpstreamGateway, UpstreamResult } from '../../src/upstreams/upstream-gateway';

/** A gateway whose calls the test answers by hand; waiting calls honour `hold` like the real one. */
class FakeGateway implements UpstreamGateway {
  readonly calls: { call: UpstreamCall; resolve: (r: UpstreamResult) => void; sent: boolean }[] = [];
  /** Calls that start "in flight" (sent) at once; the rest wait for a slot until `send()`. */
  constructor(private readonly slots = Infinity) {}

  checkRoute() {
    return { ok: true };
  }

  async close(): Promise<void> {}

  call(call: UpstreamCall): Promise<UpstreamResult> {
    return new Promise((resolve, reject) => {
      const entry = { call, resolve, sent: this.inFlight().length < this.slots };
      this.calls.push(entry);
      call.signal.addEventListener('abort', () => reject(abortError(call.signal)), { once: true });
      const onHold = () => {
        if (entry.sent) return;
        this.calls.splice(this.calls.indexOf(entry), 1);
        resolve({ kind: 'unanswered', reason: 'held', attempts: call.attemptsSoFar });
      };
      if (call.hold?.aborted) onHold();
      call.hold?.addEventListener('abort', onHold, { once: true });
    });
  }

  inFlight() {
    return this.calls.filter((c) => c.sent);
  }

  answer(line: number, status = 200, body: object = { ok: line }) {
    const entry = this.calls.find((c) => c.call.requestId.endsWith(`:${line}`) && c.sent);
    if (!entry) throw new Error(`line ${line} is not in flight`);
    this.calls.splice(this.calls.indexOf(entry), 1);
    entry.resolve({
      kind: 'http',
      status,
      body,
      text: JSON.stringify(body),
      upstreamRequestId: `req-${line}`,
      upstream: 'fake',
      attempts: 1,
    });
    // A freed slot goes to the next waiting call.
    const next = this.calls.find((c) => !c.sent);
    if (next) next.sent = true;
  }
}

class FakeRecorder implements OutcomeRecorder {
  readonly rows = new Map<number, RequestOutcome>();
  /** Each call's outcomes, as [rows, bytes of output]. */
  readonly flushes: [number, number][] = [];
  failing = false;
  attempts = 0;
  /** While set, record() waits for it (a slow Postgres). */
  gate: Promise<void> | null = null;

  async record(_batchId: string, outcomes: readonly RequestOutcome[]): Promise<number[]> {
    this.attempts++;
    this.flushes.push([outcomes.length, outcomes.reduce((n, o) => n + o.output.length, 0)]);
    if (this.gate) await this.gate;
    if (this.failing) throw new Error('connection refused');
    const added: number[] = [];
    for (const o of outcomes) {
      if (!this.rows.has(o.line)) {
        this.rows.set(o.line, o);
        added.push(o.line);
      }
    }
    return added;
  }
}

const tick = () => new Promise((r) => setImmediate(r));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!condition()) throw new Error(`not reached: ${what}`);
}

function job(lines: number[], extra: Partial<ChunkJob> = {}): ChunkJob {
  return {
    batchId: 'batch_1',
    tenantId: 't',
    endpoint: '/v1/chat/completions',
    provider: null,
    deadline: Date.now() + 60_000,
    requests: lines.map((line) => ({ line, customId: `c${line}`, body: { model: 'm', messages: [] } })),
    unreadable: [],
    attempts: {},
    ...extra,
  };
}

const OPTIONS = {
  flush: { maxRows: 2, maxBytes: 1 << 20, intervalMs: 5 },
  recordRetry: { baseMs: 1, maxMs: 5, giveUpAfterMs: 60_000 },
};

function start(
  gateway: FakeGateway,
  recorder: FakeRecorder,
  j: ChunkJob,
  options = OPTIONS,
  metrics?: Metrics,
  answerMemory?: ByteBudget,
) {
  const abort = new AbortController();
  const drain = new AbortController();
  const run = new ChunkRun(
    { gateway, recorder, clock: { now: () => Date.now() }, metrics, answerMemory },
    j,
    { abort: abort.signal, drain: drain.signal },
    options,
  );
  return { run, abort, drain, done: run.run() };
}

describe('ChunkRun', () => {
  it('puts every request of the chunk to the gateway at once and records each outcome once', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const { done } = start(gateway, recorder, job([1, 2, 3, 4, 5]));
    await tick();
    expect(gateway.calls).toHaveLength(5);
    for (const line of [3, 1, 5, 2, 4]) gateway.answer(line, line === 5 ? 400 : 200);
    expect(await done).toEqual({ end: 'done', recorded: 5, unanswered: 0 });
    expect([...recorder.rows.keys()].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(recorder.rows.get(5)).toMatchObject({ ok: false });
    expect(JSON.parse(recorder.rows.get(1)!.output)).toMatchObject({
      custom_id: 'c1',
      response: { status_code: 200, request_id: 'req-1', body: { ok: 1 } },
    });
  });

  it('counts each request and its tokens once, when recorded, and none another attempt recorded first', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    // Line 4 was recorded by an earlier attempt (it still drains, and answers it again here).
    recorder.rows.set(4, { line: 4 } as RequestOutcome);
    const metrics = new Metrics();
    const { done } = start(
      gateway,
      recorder,
      job([1, 2, 3, 4], { model: 'm', unreadable: [{ line: 5, customId: 'c5', reason: 'bad' }] }),
      OPTIONS,
      metrics,
    );
    await tick();
    const usage = { usage: { prompt_tokens: 10, completion_tokens: 3 } };
    gateway.answer(1, 200, usage);
    gateway.answer(2, 200, usage);
    gateway.answer(3, 429, usage);
    gateway.answer(4, 200, usage);
    expect(await done).toMatchObject({ end: 'done', recorded: 4 });

    const s = parseExposition(await metrics.scrape());
    const labels = { endpoint: '/v1/chat/completions', model: 'm' };
    expect(total(s, 'barge_requests_total', { ...labels, outcome: 'completed', upstream: 'fake' })).toBe(2);
    expect(total(s, 'barge_requests_total', { ...labels, outcome: 'failed', upstream: 'fake' })).toBe(1);
    expect(total(s, 'barge_requests_total', { ...labels, outcome: 'failed', upstream: 'none' })).toBe(1);
    expect(total(s, 'barge_requests_total')).toBe(4);
    // Tokens of completed requests only, the duplicate not counted.
    expect(total(s, 'barge_tokens_total', { kind: 'input', model: 'm' })).toBe(20);
    expect(total(s, 'barge_tokens_total', { kind: 'output', model: 'm' })).toBe(6);
  });

  it('turns an unreadable line and a failure to form an outcome into those requests’ error lines', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const { done } = start(
      gateway,
      recorder,
      job([1, 2], { unreadable: [{ line: 3, customId: 'c3', reason: 'Unexpected token' }] }),
    );
    await tick();
    gateway.answer(1);
    // A body no output line can hold: deeper than JSON.stringify walks, and text with a newline.
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const entry = gateway.calls[0];
    gateway.calls.splice(0, 1);
    entry.resolve({
      kind: 'http',
      status: 200,
      body: deep,
      text: '[\n]',
      upstreamRequestId: null,
      upstream: 'f',
      attempts: 1,
    });
    expect(await done).toMatchObject({ end: 'done', recorded: 3 });
    expect(JSON.parse(recorder.rows.get(3)!.output).error.code).toBe(UNREADABLE_LINE);
    expect(JSON.parse(recorder.rows.get(2)!.output).error.code).toBe('upstream_invalid_response');
    expect(recorder.rows.get(2)!.ok).toBe(false);
    expect(INTERNAL_ERROR).toBe('internal_error');
  });

  it('stops sending while answers cannot be recorded, keeps what arrives, and resumes after', async () => {
    const gateway = new FakeGateway(2);
    const recorder = new FakeRecorder();
    recorder.failing = true;
    const { run, done } = start(gateway, recorder, job([1, 2, 3, 4, 5, 6]));
    await tick();
    expect(gateway.inFlight()).toHaveLength(2);
    gateway.answer(1);
    gateway.answer(2); // flushes 2 rows: refused; lines 3 and 4 took the freed slots
    await until(() => recorder.attempts >= 1, 'a failed flush');
    // Held: the calls still waiting (5, 6) came back unanswered, and are not sent while
    // Postgres refuses; the two in flight finish into the buffer.
    await until(() => gateway.calls.length === 2, 'waiting calls held');
    gateway.answer(3);
    gateway.answer(4);
    await tick();
    expect(gateway.calls).toHaveLength(0);
    expect(run.buffered).toBe(4);
    recorder.failing = false;
    await until(() => gateway.inFlight().length === 2, 'sending resumed');
    for (const line of [5, 6]) gateway.answer(line);
    expect(await done).toEqual({ end: 'done', recorded: 6, unanswered: 0 });
    expect(recorder.rows.size).toBe(6);
  });

  it('records a burst of large answers in flushes of at most maxBytes of output', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    let release!: () => void;
    recorder.gate = new Promise((resolve) => (release = resolve));
    const big = { text: 'x'.repeat(400) };
    const { done } = start(gateway, recorder, job([1, 2, 3, 4, 5, 6, 7, 8, 9]), {
      ...OPTIONS,
      flush: { maxRows: 100, maxBytes: 1000, intervalMs: 5 },
    });
    await tick();
    gateway.answer(1, 200, big); // the first flush starts, and waits on the gate
    await until(() => recorder.flushes.length === 1, 'the first flush');
    for (const line of [2, 3, 4, 5, 6, 7, 8, 9]) gateway.answer(line, 200, line % 2 ? big : { ok: line });
    recorder.gate = null;
    release();
    expect(await done).toEqual({ end: 'done', recorded: 9, unanswered: 0 });
    // Eight answers arrived during the first flush: they went in several, none over the bound
    // but by a single outcome (an output line is about 500 bytes with `big`, about 100 without).
    expect(recorder.flushes.length).toBeGreaterThanOrEqual(4);
    for (const [rows, bytes] of recorder.flushes) expect(rows === 1 || bytes <= 1000).toBe(true);
    expect(recorder.flushes.reduce((n, [rows]) => n + rows, 0)).toBe(9);
  });

  it('charges answer memory for each outcome until it is recorded, and gives it all back', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const memory = new ByteBudget(1 << 20);
    let release!: () => void;
    recorder.gate = new Promise((resolve) => (release = resolve));
    const { done } = start(gateway, recorder, job([1, 2, 3]), OPTIONS, undefined, memory);
    await tick();
    for (const line of [1, 2, 3]) gateway.answer(line);
    await until(() => recorder.flushes.length === 1, 'a flush waiting');
    const lines = () => [...recorder.rows.values()];
    expect(lines()).toHaveLength(0);
    // Held while Postgres is slow: three output lines, at HELD_MEMORY_PER_BYTE each.
    expect(memory.inUse).toBeGreaterThan(3 * 90 * HELD_MEMORY_PER_BYTE);
    recorder.gate = null;
    release();
    await done;
    const bytes = lines().reduce((n, o) => n + o.output.length, 0);
    expect(bytes).toBeGreaterThan(0);
    expect(memory.inUse).toBe(0);
  });

  it('gives answer memory back when it gives up recording', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const memory = new ByteBudget(1 << 20);
    recorder.failing = true;
    const { done } = start(
      gateway,
      recorder,
      job([1, 2, 3]),
      { ...OPTIONS, recordRetry: { baseMs: 1, maxMs: 2, giveUpAfterMs: 30 } },
      undefined,
      memory,
    );
    await tick();
    gateway.answer(1);
    gateway.answer(2);
    await until(() => memory.inUse > 0, 'answers charged');
    await expect(done).rejects.toThrow(/could not record outcomes/);
    expect(memory.inUse).toBe(0);
  });

  it('gives up past its bound, failing the chunk so it is retried', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    recorder.failing = true;
    const { done } = start(gateway, recorder, job([1, 2, 3]), {
      ...OPTIONS,
      recordRetry: { baseMs: 1, maxMs: 2, giveUpAfterMs: 30 },
    });
    await tick();
    gateway.answer(1);
    gateway.answer(2);
    await expect(done).rejects.toThrow(/could not record outcomes/);
  });

  it('on drain starts nothing more, lets calls in flight finish and records them', async () => {
    const gateway = new FakeGateway(2);
    const recorder = new FakeRecorder();
    const { drain, done } = start(gateway, recorder, job([1, 2, 3, 4]));
    await tick();
    drain.abort();
    await until(() => gateway.calls.length === 2, 'waiting calls released');
    gateway.answer(1);
    gateway.answer(2);
    expect(await done).toEqual({ end: 'drained', recorded: 2, unanswered: 2 });
    expect([...recorder.rows.keys()].sort()).toEqual([1, 2]);
  });

  it('on abort ends the calls in flight at once, recording only what had finished', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const { abort, done } = start(gateway, recorder, job([1, 2, 3]));
    await tick();
    gateway.answer(2);
    abort.abort();
    expect(await done).toEqual({ end: 'aborted', recorded: 1, unanswered: 2 });
    expect([...recorder.rows.keys()]).toEqual([2]);
  });

  it('carries attempts across runs and leaves requests the deadline stopped unanswered', async () => {
    const gateway = new FakeGateway();
    const recorder = new FakeRecorder();
    const { run, done } = start(gateway, recorder, job([1, 2], { attempts: { 1: 3 } }));
    await tick();
    expect(gateway.calls.map((c) => c.call.attemptsSoFar)).toEqual([3, 0]);
    gateway.calls[1].call.onRetry?.(1);
    expect(run.attempts).toEqual({ 1: 3, 2: 1 });
    const first = gateway.calls.shift()!;
    first.resolve({ kind: 'unanswered', reason: 'deadline', attempts: 4 });
    gateway.answer(2);
    expect(await done).toEqual({ end: 'drained', recorded: 1, unanswered: 1 });
    expect(run.attempts).toEqual({ 1: 4 });
  });
});
