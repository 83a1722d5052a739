import { WorkBusy } from '../../src/common/failures';
import type { ChunkContents } from '../../src/batches/dispatch/chunk-reader';
import {
  Finalizer,
  outputFileId,
  type FencedSession,
  type FinalizeEnd,
  type FinalizeStore,
  type StagedFile,
} from '../../src/batches/finalize/finalizer';
import type { ChunkRange, RecordedLine, RequestOutcome } from '../../src/batches/store/work.repository';
import type { BatchRecord, BatchStatus } from '../../src/database/entities/batch.entity';
import { Metrics } from '../../src/observability/metrics';
import { parseExposition, total } from '../support/prometheus';

/** The Finalizer's store in memory: one batch, its chunks and recorded outcomes, and a fence. */
class MemoryStore implements FinalizeStore {
  status: BatchStatus = 'in_progress';
  readonly outcomes = new Map<number, RequestOutcome>();
  ends: FinalizeEnd[] = [];
  deleted = 0;
  fenceHeld = false;
  /** Lets a test stop the finalize while it holds the fence. */
  beforeCommit: () => Promise<void> = async () => undefined;

  constructor(
    readonly chunkList: ChunkRange[],
    readonly lines: Map<number, string>,
  ) {}

  async batch(): Promise<BatchRecord> {
    return {
      id: 'batch_1',
      tenantId: 't',
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      status: this.status,
      outputExpiresAfterSeconds: null,
      requestCompleted: [...this.outcomes.values()].filter((o) => o.ok).length,
      requestFailed: [...this.outcomes.values()].filter((o) => !o.ok).length,
      createdAt: new Date(0),
    } as BatchRecord;
  }
  async markFinalizing() {
    if (this.status !== 'in_progress') return false;
    this.status = 'finalizing';
    return true;
  }
  async chunks() {
    return this.chunkList;
  }
  async answeredLines(_id: string, from: number, to: number) {
    return new Set([...this.outcomes.keys()].filter((l) => l >= from && l < to));
  }
  async countOutcomes() {
    const all = [...this.outcomes.values()];
    return { ok: all.filter((o) => o.ok).length, failed: all.filter((o) => !o.ok).length };
  }
  async *outputs(_id: string, ok: boolean): AsyncGenerator<RecordedLine> {
    for (const [line, o] of [...this.outcomes.entries()].sort((a, b) => a[0] - b[0])) {
      if (o.ok === ok) yield { line, output: o.output };
    }
  }
  async deleteWorkingData() {
    this.deleted++;
  }
  async fenced<T>(_id: string, fn: (session: FencedSession) => Promise<T>): Promise<T> {
    if (this.fenceHeld) throw new WorkBusy('busy');
    this.fenceHeld = true;
    try {
      return await fn({
        record: async (_b, outcomes) => {
          let n = 0;
          for (const o of outcomes) {
            if (this.outcomes.has(o.line)) continue;
            this.outcomes.set(o.line, o);
            n++;
          }
          return n;
        },
        commit: async (_batch, end) => {
          await this.beforeCommit();
          if (['completed', 'failed', 'expired', 'cancelled'].includes(this.status)) return false;
          this.status = end.status;
          this.ends.push(end);
          return true;
        },
      });
    } finally {
      this.fenceHeld = false;
    }
  }
}

const outcome = (line: number, ok: boolean): RequestOutcome => ({
  line,
  customId: `c${line}`,
  ok,
  output: JSON.stringify({ custom_id: `c${line}`, ok }),
  inputTokens: 0,
  cachedTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
});

function setup(answered: RequestOutcome[], metrics?: Metrics, now = () => new Date(1_000)) {
  // One chunk of lines 1..4.
  const store = new MemoryStore(
    [{ idx: 0, firstLine: 1, lineCount: 4, requestCount: 4, byteStart: 0, byteEnd: 100 }],
    new Map(),
  );
  for (const o of answered) store.outcomes.set(o.line, o);
  const staged: { file: StagedFile; text: string }[] = [];
  const discarded: StagedFile[] = [];
  let progress = 0;
  const finalizer = new Finalizer({
    store,
    readChunk: async (_b, _c, skip): Promise<ChunkContents> => ({
      requests: [1, 2, 3, 4]
        .filter((l) => !skip.has(l))
        .map((line) => ({ line, customId: `c${line}`, body: {} })),
      unreadable: [],
    }),
    stage: async (_batch, file, attempt, source) => {
      let text = '';
      for await (const part of source) text += part.toString();
      const staged_ = { ...file, objectKey: `files/t/attempts/${attempt}/${file.id}`, bytes: text.length };
      staged.push({ file: staged_, text });
      return staged_;
    },
    discard: async (file) => void discarded.push(file),
    now,
    metrics,
  });
  return { store, finalizer, staged, discarded, progress: () => progress++, count: () => progress };
}

describe('Finalizer', () => {
  it('gives the unanswered their line, writes both files, and ends the batch once', async () => {
    const { store, finalizer, staged, progress, count } = setup([outcome(1, true), outcome(3, false)]);
    expect(await finalizer.finalize({ batchId: 'batch_1', reason: 'cancelled' }, progress)).toEqual({
      status: 'cancelled',
    });
    expect(store.ends).toHaveLength(1);
    expect(store.ends[0]).toMatchObject({
      status: 'cancelled',
      outputFile: { id: outputFileId('batch_1', 'output') },
      errorFile: { id: outputFileId('batch_1', 'error') },
    });
    const [output, errors] = staged.map((s) => s.text.trim().split('\n'));
    expect(output).toHaveLength(1);
    expect(errors.map((l) => JSON.parse(l).custom_id)).toEqual(['c2', 'c3', 'c4']);
    expect(errors.filter((l) => JSON.parse(l).error?.code === 'batch_cancelled')).toHaveLength(2);
    expect(store.deleted).toBe(1);
    expect(count()).toBeGreaterThan(0);
  });

  it("reads no chunk and queries no chunk's lines when every request has its outcome, and reports its steps", async () => {
    const { store, finalizer, staged } = setup([1, 2, 3, 4].map((l) => outcome(l, l !== 2)));
    const answeredLines = jest.spyOn(store, 'answeredLines');
    const phases = {};
    expect(await finalizer.finalize({ batchId: 'batch_1', reason: 'completed' }, undefined, phases)).toEqual({
      status: 'completed',
    });
    expect(answeredLines).not.toHaveBeenCalled();
    expect(staged.map((s) => s.text.trim().split('\n').length)).toEqual([3, 1]);
    expect(Object.keys(phases)).toEqual(['answer', 'count', 'output', 'errors', 'commit', 'cleanup']);
  });

  it('counts the requests it answers, its transitions, its duration and how long it has been running', async () => {
    let clock = 1_000;
    const now = () => new Date(clock);
    const metrics = new Metrics(undefined, { now: () => clock });
    const { store, finalizer } = setup([outcome(1, true), outcome(3, false)], metrics, now);
    let release!: () => void;
    store.beforeCommit = () => new Promise<void>((r) => (release = r));
    const running = finalizer.finalize({ batchId: 'batch_1', reason: 'completed' });
    await new Promise((r) => setImmediate(r));
    clock += 42_000;
    const during = parseExposition(await metrics.scrape());
    expect(total(during, 'barge_finalize_oldest_running_seconds')).toBe(42);
    release();
    await running;

    const s = parseExposition(await metrics.scrape());
    // Lines 2 and 4 had no outcome: finalize answered them, with no upstream.
    expect(
      total(s, 'barge_requests_total', { outcome: 'failed', upstream: 'none', model: 'gpt-4o-mini' }),
    ).toBe(2);
    expect(total(s, 'barge_requests_total')).toBe(2);
    expect(total(s, 'barge_batch_transitions_total', { status: 'finalizing' })).toBe(1);
    expect(total(s, 'barge_batch_transitions_total', { status: 'completed' })).toBe(1);
    expect(total(s, 'barge_finalize_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(total(s, 'barge_finalize_duration_seconds_sum', { status: 'completed' })).toBe(42);
    expect(total(s, 'barge_finalize_oldest_running_seconds')).toBe(0);

    // A second finalize finds the batch ended: nothing more is counted.
    await finalizer.finalize({ batchId: 'batch_1', reason: 'completed' });
    const again = parseExposition(await metrics.scrape());
    expect(total(again, 'barge_batch_transitions_total')).toBe(2);
    expect(total(again, 'barge_finalize_duration_seconds_count')).toBe(1);
  });

  it('writes no output file when nothing succeeded, and records why a failed batch failed', async () => {
    const { store, finalizer } = setup([]);
    await finalizer.finalize({
      batchId: 'batch_1',
      reason: 'failed',
      failure: { code: 'batch_failed', message: 'Postgres kept failing' },
    });
    expect(store.ends[0]).toMatchObject({
      status: 'failed',
      outputFile: null,
      errors: [{ code: 'batch_failed', message: 'Postgres kept failing', param: null, line: null }],
    });
    expect(store.ends[0].errorFile).not.toBeNull();
  });

  it('refuses a second attempt while the first holds the fence, and does nothing once ended', async () => {
    const { store, finalizer } = setup([
      outcome(1, true),
      outcome(2, true),
      outcome(3, true),
      outcome(4, true),
    ]);
    let release!: () => void;
    store.beforeCommit = () => new Promise<void>((r) => (release = r));
    const first = finalizer.finalize({ batchId: 'batch_1', reason: 'completed' });
    await new Promise((r) => setImmediate(r));
    await expect(finalizer.finalize({ batchId: 'batch_1', reason: 'completed' })).rejects.toBeInstanceOf(
      WorkBusy,
    );
    release();
    expect(await first).toEqual({ status: 'completed' });
    store.beforeCommit = async () => undefined;
    expect(await finalizer.finalize({ batchId: 'batch_1', reason: 'cancelled' })).toEqual({
      status: 'completed',
    });
    expect(store.ends).toHaveLength(1);
  });

  it('discards what it staged when its commit finds the batch already ended', async () => {
    const { store, finalizer, staged, discarded } = setup([outcome(1, true)]);
    store.beforeCommit = async () => void (store.status = 'expired');
    expect(await finalizer.finalize({ batchId: 'batch_1', reason: 'completed' })).toEqual({
      status: 'expired',
    });
    expect(discarded.map((f) => f.objectKey).sort()).toEqual(staged.map((s) => s.file.objectKey).sort());
    expect(discarded).toHaveLength(2);
    expect(store.ends).toHaveLength(0);
  });

  it('stages each attempt under a key of its own', async () => {
    const a = setup([outcome(1, true)]);
    a.store.beforeCommit = async () => {
      throw new Error('connection lost');
    };
    await expect(a.finalizer.finalize({ batchId: 'batch_1', reason: 'expired' })).rejects.toThrow(
      'connection lost',
    );
    a.store.beforeCommit = async () => undefined;
    await a.finalizer.finalize({ batchId: 'batch_1', reason: 'expired' });
    const keys = a.staged.map((s) => s.file.objectKey);
    expect(new Set(keys).size).toBe(keys.length);
    // The first attempt's objects were discarded, the committed ones kept.
    expect(a.discarded.map((f) => f.objectKey)).toEqual(keys.slice(0, 2));
  });
});
