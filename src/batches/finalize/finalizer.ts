import { createHash, randomBytes } from 'node:crypto';
import type { BatchErrorItem, BatchRecord } from '../../database/entities/batch.entity';
import type { Metrics } from '../../observability/metrics';
import type { ChunkContents } from '../dispatch/chunk-reader';
import { isTerminal, type EndStatus } from '../store/batch.repository';
import type { ChunkRange, RecordedLine, RequestOutcome } from '../store/work.repository';
import { errorLine, UNFINISHED } from './output-lines';

/**
 * Finalize, once: gives every unanswered request its error line, streams the output and error
 * files from the recorded lines into storage, and ends the batch. Plain code over small
 * interfaces (Postgres and MinIO behind them in production, fakes in unit tests).
 *
 * "Once" is made of three rules:
 * - Fenced: the whole finalize runs holding the batch's fence (a Postgres advisory lock on a
 *   session of its own); every write that decides anything (the unanswered lines, the commit)
 *   goes through that same session, so an attempt that lost its fence cannot write. A second
 *   attempt (Temporal retries after a missed heartbeat) gets WorkBusy and retries later.
 * - Files are streamed under attempt-unique object keys and committed atomically with the end
 *   of the batch (file rows and status in one transaction): a committed file is never
 *   overwritten, and the object of an attempt that did not commit is an orphan the sweep
 *   removes.
 * - Working rows are deleted only after the commit, idempotently; a periodic sweep removes
 *   what a finalize that died after its commit left behind.
 */

export type FinalizeReason = 'completed' | 'cancelled' | 'expired' | 'failed';

export interface FinalizeRequest {
  batchId: string;
  reason: FinalizeReason;
  /** For `failed`: why, as an entry of the batch's `errors`. */
  failure?: { code: string; message: string };
}

/** Output files get ids derived from the batch: a retried finalize commits the same ids. */
export function outputFileId(batchId: string, kind: 'output' | 'error'): string {
  return `file-${createHash('sha256').update(`${batchId}/${kind}`).digest('base64url').replace(/[-_]/g, '').slice(0, 24)}`;
}

/** An object streamed to storage whose file row is written by the commit. */
export interface StagedFile {
  id: string;
  objectKey: string;
  bytes: number;
  filename: string;
}

export interface FinalizeEnd {
  status: EndStatus;
  outputFile: StagedFile | null;
  errorFile: StagedFile | null;
  /** The output files' created_at, and when they expire (output_expires_after; null: never), from one clock reading. */
  filesCreatedAt: Date;
  filesExpireAt: Date | null;
  errors?: BatchErrorItem[];
}

/** The writes of a finalize, all through the fence's own session. */
export interface FencedSession {
  record(batchId: string, outcomes: readonly RequestOutcome[]): Promise<number>;
  /** File rows and the batch's end in one transaction; false when the batch had already ended. */
  commit(batch: BatchRecord, end: FinalizeEnd): Promise<boolean>;
}

export interface FinalizeStore {
  /** The batch (BatchNotFound when it does not exist). */
  batch(batchId: string): Promise<BatchRecord>;
  /** in_progress -> finalizing; false when the batch was not in_progress. */
  markFinalizing(batchId: string): Promise<boolean>;
  chunks(batchId: string): Promise<ChunkRange[]>;
  answeredLines(batchId: string, from: number, to: number): Promise<Set<number>>;
  countOutcomes(batchId: string): Promise<{ ok: number; failed: number }>;
  outputs(batchId: string, ok: boolean): AsyncIterable<RecordedLine>;
  deleteWorkingData(batchId: string): Promise<void>;
  /** Runs `fn` holding the batch's fence; rejects with WorkBusy while another attempt holds it. */
  fenced<T>(batchId: string, fn: (session: FencedSession) => Promise<T>): Promise<T>;
}

/** Milliseconds per step of one finalize, for its log line. */
export interface FinalizePhases {
  /** Error lines for the requests without an outcome. */
  answer?: number;
  count?: number;
  /** Streaming the output file into storage, and the error file. */
  output?: number;
  errors?: number;
  /** The transaction that ends the batch. */
  commit?: number;
  /** Deleting the working rows, after the end. */
  cleanup?: number;
}

export interface FinalizeDeps {
  store: FinalizeStore;
  /** Reads the requests of a chunk that are not in `skip`. */
  readChunk(batch: BatchRecord, chunk: ChunkRange, skip: ReadonlySet<number>): Promise<ChunkContents>;
  /** Streams a file's bytes to a key unique to `attempt`. */
  stage(
    batch: BatchRecord,
    file: { id: string; filename: string },
    attempt: string,
    source: AsyncIterable<Buffer>,
  ): Promise<StagedFile>;
  /** Removes a staged object that will not be committed (best effort: the sweep gets the rest). */
  discard(file: StagedFile): Promise<void>;
  now(): Date;
  /** Finalize durations, transitions and the requests it answers; none made without it. */
  metrics?: Metrics;
}

const END_OF: Record<FinalizeReason, EndStatus> = {
  completed: 'completed',
  cancelled: 'cancelled',
  expired: 'expired',
  failed: 'failed',
};

/** Code of a request left without an outcome although the batch completed (should not happen). */
export const NO_OUTCOME = { code: 'internal_error', message: 'This request has no recorded outcome.' };

export class Finalizer {
  constructor(private readonly deps: FinalizeDeps) {}

  /**
   * `progress` is called as work goes on (the activity heartbeats with it); `phases`, when
   * given, receives how long each step took, in ms (the activity logs them).
   */
  async finalize(
    request: FinalizeRequest,
    progress: () => void = () => undefined,
    phases?: FinalizePhases,
  ): Promise<{ status: string }> {
    const { store } = this.deps;
    const { batchId } = request;
    const before = await store.batch(batchId);
    if (isTerminal(before.status)) {
      await store.deleteWorkingData(batchId);
      return { status: before.status };
    }
    return store.fenced(batchId, async (session) => {
      const batch = await store.batch(batchId);
      if (isTerminal(batch.status)) return { status: batch.status };
      const { metrics } = this.deps;
      const startedAt = this.deps.now().getTime();
      const running = metrics?.finalizeStarted();
      let final = 'error';
      try {
        const result = await this.finalizeFenced(batch, request, session, progress, phases ?? {});
        final = result.status;
        return result;
      } finally {
        running?.();
        metrics?.finalizeSeconds.labels(final).observe((this.deps.now().getTime() - startedAt) / 1000);
      }
    });
  }

  private async finalizeFenced(
    batch: BatchRecord,
    request: FinalizeRequest,
    session: FencedSession,
    progress: () => void,
    phases: FinalizePhases,
  ): Promise<{ status: string }> {
    const { store, metrics } = this.deps;
    const batchId = batch.id;
    let mark = this.deps.now().getTime();
    const timed = <T>(phase: keyof FinalizePhases, value: T): T => {
      const now = this.deps.now().getTime();
      phases[phase] = now - mark;
      mark = now;
      return value;
    };
    if (request.reason === 'completed' && (await store.markFinalizing(batchId))) {
      metrics?.transition('finalizing');
    }
    progress();

    timed('answer', await this.answerTheRest(batch, request.reason, session, progress));
    const counts = timed('count', await store.countOutcomes(batchId));
    const attempt = randomBytes(6).toString('hex');
    const staged: StagedFile[] = [];
    let committed = false;
    try {
      const outputFile = counts.ok > 0 ? await this.stage(batch, 'output', attempt, progress) : null;
      timed('output', outputFile);
      if (outputFile) staged.push(outputFile);
      const errorFile = counts.failed > 0 ? await this.stage(batch, 'error', attempt, progress) : null;
      timed('errors', errorFile);
      if (errorFile) staged.push(errorFile);
      const errors = request.failure
        ? [{ code: request.failure.code, message: request.failure.message, param: null, line: null }]
        : undefined;
      const createdAt = this.deps.now();
      committed = await session.commit(batch, {
        status: END_OF[request.reason],
        outputFile,
        errorFile,
        // output_expires_after is anchored at the output file's created_at: one reading of
        // the clock for both, so expires_at - created_at is exactly the seconds asked for.
        filesCreatedAt: createdAt,
        filesExpireAt: batch.outputExpiresAfterSeconds
          ? new Date(createdAt.getTime() + batch.outputExpiresAfterSeconds * 1000)
          : null,
        errors,
      });
      timed('commit', committed);
    } finally {
      if (!committed) await Promise.all(staged.map((f) => this.deps.discard(f)));
    }
    if (committed) metrics?.transition(END_OF[request.reason]);
    const final = committed ? END_OF[request.reason] : (await store.batch(batchId)).status;
    await store.deleteWorkingData(batchId);
    timed('cleanup', final);
    return { status: final };
  }

  /** Every request without an outcome gets its error line: batch_cancelled, batch_expired, ... */
  private async answerTheRest(
    batch: BatchRecord,
    reason: FinalizeReason,
    session: FencedSession,
    progress: () => void,
  ): Promise<void> {
    const { store } = this.deps;
    const chunks = await store.chunks(batch.id);
    // The counters move in the statement that records an outcome, and every chunk has
    // stopped: when they add up to the requests planned, none is left and no chunk need be read.
    const planned = chunks.reduce((n, c) => n + c.requestCount, 0);
    if (batch.requestCompleted + batch.requestFailed >= planned) return;
    const unfinished = reason === 'completed' ? NO_OUTCOME : UNFINISHED[reason];
    for (const chunk of chunks) {
      const answered = await store.answeredLines(
        batch.id,
        chunk.firstLine,
        chunk.firstLine + chunk.lineCount,
      );
      if (answered.size >= chunk.requestCount) continue;
      const { requests, unreadable } = await this.deps.readChunk(batch, chunk, answered);
      const missing = [...requests, ...unreadable].map((r) => ({
        line: r.line,
        customId: r.customId,
        ok: false,
        output: errorLine(r.customId, unfinished.code, unfinished.message),
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        reasoningTokens: 0,
      }));
      const recorded = await session.record(batch.id, missing);
      this.deps.metrics?.unansweredRecorded(batch.endpoint, batch.model, recorded);
      progress();
    }
  }

  private stage(
    batch: BatchRecord,
    kind: 'output' | 'error',
    attempt: string,
    progress: () => void,
  ): Promise<StagedFile> {
    const lines = this.deps.store.outputs(batch.id, kind === 'output');
    const file = { id: outputFileId(batch.id, kind), filename: `${batch.id}_${kind}.jsonl` };
    return this.deps.stage(batch, file, attempt, joined(lines, progress));
  }
}

/** Lines joined into ~1 MiB buffers (far fewer, larger writes), reporting progress as they go. */
async function* joined(lines: AsyncIterable<RecordedLine>, progress: () => void): AsyncGenerator<Buffer> {
  let parts: string[] = [];
  let size = 0;
  for await (const { output } of lines) {
    parts.push(output, '\n');
    size += output.length + 1;
    if (size >= 1 << 20) {
      yield Buffer.from(parts.join(''));
      progress();
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.from(parts.join(''));
}
