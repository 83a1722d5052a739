import type { Metrics } from '../../observability/metrics';
import type { Clock } from '../../upstreams/clock';
import { isAbortError } from '../../upstreams/abort';
import type { Secret } from '../../upstreams/secret';
import type { UpstreamGateway, UpstreamResult } from '../../upstreams/upstream-gateway';
import { errorLine, outcomeLine, type FinalResult } from '../finalize/output-lines';
import type { OutcomeRecorder, RequestOutcome } from '../store/work.repository';
import type { ByteBudget } from './byte-budget';
import type { ChunkRequest, UnreadableLine } from './chunk-reader';
import { OutcomeBuffer, realSleep, type FlushPolicy, type RecordRetry, type Sleep } from './outcome-buffer';

/**
 * Sends one chunk's requests upstream and records each final outcome once. Plain code: the
 * chunk activity (activities/dispatch.activity.ts) adapts Temporal's heartbeats and
 * cancellation onto it; unit tests drive it with a fake gateway and recorder.
 *
 * Requests, not chunks, are the unit of concurrency: every request of the chunk waits in the
 * gateway's fair queue at once, so the upstream's capacity (its limit and this batch's fair
 * share of it) decides how many run, and the chunks of a batch's window keep it filled while
 * one chunk finishes its slowest requests.
 *
 * One request never fails the chunk: whatever goes wrong preparing, sending or recording it
 * becomes its own error line. What stops the chunk:
 * - `abort` (the batch is cancelled or expired): calls in flight are aborted at once; their
 *   requests stay unanswered, for finalize to mark batch_cancelled / batch_expired;
 * - `drain` (the attempt hands over: the workflow moved to a new run, the worker is shutting
 *   down, or another attempt took the chunk): nothing new starts, calls in flight finish and
 *   are recorded, the rest is left for the next attempt;
 * - the recorder failing: nothing new starts while Postgres refuses the answers (calls in
 *   flight finish into the buffer), sending resumes when a flush succeeds; past
 *   `recordRetry.giveUpAfterMs` the chunk fails with an InfrastructureFault.
 */

export interface ChunkJob {
  batchId: string;
  tenantId: string;
  endpoint: string;
  /** The batch's model (a label of the request metrics). */
  model?: string | null;
  provider: string | null;
  /** The tenant's own keys by upstream (src/tenants/provider-keys.ts); elsewhere the operator's. */
  credentials?: ReadonlyMap<string, Secret>;
  /** Epoch ms: the batch's expiry; nothing is sent after it. */
  deadline: number;
  requests: ChunkRequest[];
  unreadable: UnreadableLine[];
  /** Attempts made per line by earlier attempts of this chunk (retries survive restarts). */
  attempts: Record<number, number>;
}

export interface ChunkControl {
  abort: AbortSignal;
  drain: AbortSignal;
}

export interface ChunkRunOptions {
  flush: FlushPolicy;
  recordRetry: RecordRetry;
}

export interface ChunkRunDeps {
  gateway: UpstreamGateway;
  recorder: OutcomeRecorder;
  clock: Clock;
  sleep?: Sleep;
  /** Counts each request once its outcome is recorded; none made without it. */
  metrics?: Metrics;
  /** The worker's answer memory: outcomes are charged to it until recorded (OutcomeBuffer). */
  answerMemory?: ByteBudget;
}

export type ChunkEnd = 'done' | 'aborted' | 'drained';

export interface ChunkReport {
  end: ChunkEnd;
  /** Outcomes this attempt recorded (new rows). */
  recorded: number;
  /** Requests left without an outcome, for a later attempt or for finalize. */
  unanswered: number;
}

/** Code of a request whose line could not be read back, or whose outcome could not be formed. */
export const UNREADABLE_LINE = 'invalid_request_line';
export const INTERNAL_ERROR = 'internal_error';

const FLUSH_TICK_MS = 50;

export class ChunkRun {
  readonly attempts: Record<number, number>;
  private readonly buffer: OutcomeBuffer;
  private readonly internalAbort = new AbortController();
  private readonly signal: AbortSignal;
  private hold = new AbortController();
  private readonly parked: ChunkRequest[] = [];
  private inFlight = 0;
  private unanswered = 0;
  private finish: (() => void) | null = null;

  constructor(
    private readonly deps: ChunkRunDeps,
    private readonly job: ChunkJob,
    private readonly control: ChunkControl,
    options: ChunkRunOptions,
  ) {
    this.attempts = { ...job.attempts };
    this.signal = AbortSignal.any([control.abort, this.internalAbort.signal]);
    this.buffer = new OutcomeBuffer({
      batchId: job.batchId,
      recorder: deps.recorder,
      policy: options.flush,
      retry: options.recordRetry,
      clock: deps.clock,
      sleep: deps.sleep ?? realSleep,
      memory: deps.answerMemory,
      onHealth: (healthy) => (healthy ? this.resume() : this.hold.abort()),
      onFatal: (fatal) => {
        this.internalAbort.abort(fatal);
        this.maybeFinish();
      },
      onRecorded: (recorded) => deps.metrics?.recordedRequests(job.endpoint, job.model ?? null, recorded),
    });
  }

  /** Outcomes waiting to be recorded (for tests and metrics). */
  get buffered(): number {
    return this.buffer.size;
  }

  async run(): Promise<ChunkReport> {
    const onDrain = (): void => {
      this.hold.abort();
      this.maybeFinish();
    };
    this.control.drain.addEventListener('abort', onDrain, { once: true });
    if (this.control.drain.aborted) this.hold.abort();
    const tick = setInterval(() => this.buffer.tick(), FLUSH_TICK_MS);
    try {
      for (const u of this.job.unreadable) {
        this.buffer.add(
          this.outcome(
            u.line,
            u.customId,
            errorLine(u.customId, UNREADABLE_LINE, `The request line could not be read: ${u.reason}.`),
            false,
          ),
        );
      }
      const settled = new Promise<void>((resolve) => (this.finish = resolve));
      for (const request of this.job.requests) this.submit(request);
      this.maybeFinish();
      await settled;
      await this.buffer.drain();
    } finally {
      clearInterval(tick);
      this.control.drain.removeEventListener('abort', onDrain);
    }
    const end: ChunkEnd = this.control.abort.aborted
      ? 'aborted'
      : this.control.drain.aborted || this.unanswered > 0
        ? 'drained'
        : 'done';
    return { end, recorded: this.buffer.recorded, unanswered: this.unanswered };
  }

  private get stopped(): boolean {
    return this.signal.aborted || this.control.drain.aborted;
  }

  private submit(request: ChunkRequest): void {
    this.inFlight++;
    const { job } = this;
    this.deps.gateway
      .call({
        requestId: `${job.batchId}:${request.line}`,
        batchId: job.batchId,
        tenantId: job.tenantId,
        endpoint: job.endpoint,
        body: request.body,
        provider: job.provider,
        credentials: job.credentials,
        deadline: job.deadline,
        attemptsSoFar: this.attempts[request.line] ?? 0,
        signal: this.signal,
        hold: this.hold.signal,
        onRetry: (n) => (this.attempts[request.line] = n),
      })
      .then(
        (result) => this.settled(() => this.settle(request, result)),
        (error: unknown) =>
          this.settled(() => {
            if (isAbortError(error)) this.unanswered++;
            else this.fail(request, error);
          }),
      );
  }

  /** A call ended: its outcome taken care of (settle and fail never throw), the chunk may be done. */
  private settled(handle: () => void): void {
    try {
      handle();
    } finally {
      this.inFlight--;
      this.maybeFinish();
    }
  }

  private settle(request: ChunkRequest, result: UpstreamResult): void {
    if (result.kind === 'unanswered') {
      this.attempts[request.line] = result.attempts;
      // Held because answers cannot be recorded right now: sent again once they can.
      if (result.reason === 'held' && !this.stopped) this.parked.push(request);
      else this.unanswered++;
      return;
    }
    try {
      this.record(request, result);
    } catch (error) {
      this.fail(request, error);
    }
  }

  private record(request: ChunkRequest, result: FinalResult): void {
    const { ok, output, usage } = outcomeLine(request.customId, result);
    this.buffer.add({
      ...this.outcome(request.line, request.customId, output, ok),
      ...usage,
      upstream: result.upstream,
    });
    delete this.attempts[request.line];
  }

  /** Something unexpected about this one request: its error line, not the chunk's failure. */
  private fail(request: ChunkRequest, error: unknown): void {
    const message = `The request could not be processed: ${error instanceof Error ? error.message : String(error)}.`;
    this.buffer.add(
      this.outcome(
        request.line,
        request.customId,
        errorLine(request.customId, INTERNAL_ERROR, message),
        false,
      ),
    );
  }

  private outcome(line: number, customId: string, output: string, ok: boolean): RequestOutcome {
    return {
      line,
      customId,
      ok,
      output,
      inputTokens: 0,
      cachedTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
    };
  }

  /** The recorder works again: send what was held. */
  private resume(): void {
    this.hold = new AbortController();
    if (this.control.drain.aborted) this.hold.abort();
    if (this.stopped) return;
    for (const request of this.parked.splice(0)) this.submit(request);
  }

  private maybeFinish(): void {
    if (this.inFlight > 0) return;
    if (this.parked.length > 0 && !this.stopped) return; // waiting for the recorder to come back
    this.unanswered += this.parked.splice(0).length;
    this.finish?.();
  }
}
