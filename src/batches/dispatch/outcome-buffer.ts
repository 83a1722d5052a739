import { InfrastructureFault } from '../../common/failures';
import type { Clock } from '../../upstreams/clock';
import type { OutcomeRecorder, RequestOutcome } from '../store/work.repository';
import type { ByteBudget } from './byte-budget';

export interface FlushPolicy {
  /** Record once this many outcomes wait... */
  maxRows: number;
  /** ...or this many bytes of output lines... */
  maxBytes: number;
  /** ...or this long after the first of them arrived. */
  intervalMs: number;
}

export interface RecordRetry {
  /** Backoff between attempts to record while the recorder fails: base doubling up to max. */
  baseMs: number;
  maxMs: number;
  /** Past this long failing, give up: the chunk fails (retryable) and its unrecorded answers are lost. */
  giveUpAfterMs: number;
}

export type Sleep = (ms: number) => Promise<void>;

/**
 * Memory an outcome takes until it is recorded, per byte of its output line: the line itself,
 * and while it is sent the joined text of its flush and the message pg writes to the socket.
 */
export const HELD_MEMORY_PER_BYTE = 3;

export interface OutcomeBufferOptions {
  batchId: string;
  recorder: OutcomeRecorder;
  policy: FlushPolicy;
  retry: RecordRetry;
  clock: Clock;
  sleep: Sleep;
  /**
   * The worker's answer memory (src/upstreams/http-upstream.ts): outcomes are charged to it
   * until recorded, so while Postgres is slow or down, answers stop being read rather than
   * piling up here.
   */
  memory?: ByteBudget;
  /** false at the first failed flush (the chunk then holds its requests), true once one succeeds again. */
  onHealth: (healthy: boolean) => void;
  /** Once, past `retry.giveUpAfterMs` of failure; nothing more is attempted. */
  onFatal: (error: InfrastructureFault) => void;
  /** The outcomes a flush recorded (new rows only: each outcome is reported once). */
  onRecorded?: (outcomes: readonly RequestOutcome[]) => void;
}

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Outcomes on their way to Postgres. One flush at a time, in arrival order, each of at most
 * `policy.maxBytes` of output (or one outcome larger than that), so a burst of large answers
 * never becomes one huge statement. A failed flush is retried with backoff, never dropped:
 * its outcomes stay at the head of the queue and later answers queue behind them.
 * `onHealth(false)` fires at the first failure (the chunk then holds its requests) and
 * `onHealth(true)` once a flush succeeds again; past `giveUpAfterMs` of failure, `onFatal`
 * fires once and nothing more is attempted.
 */
export class OutcomeBuffer {
  private pending: RequestOutcome[] = [];
  private pendingBytes = 0;
  /** Memory charged for outcomes not yet recorded (pending or being flushed). */
  private charged = 0;
  private firstPendingAt: number | null = null;
  private loop: Promise<void> | null = null;
  private failingSince: number | null = null;
  private fatalError: InfrastructureFault | null = null;
  recorded = 0;

  constructor(private readonly options: OutcomeBufferOptions) {}

  get size(): number {
    return this.pending.length;
  }

  get fatal(): InfrastructureFault | null {
    return this.fatalError;
  }

  add(outcome: RequestOutcome): void {
    this.pending.push(outcome);
    this.pendingBytes += outcome.output.length;
    if (!this.fatalError) {
      // Given back once recorded (or when the buffer gives up, and nothing more is recorded).
      const charge = outcome.output.length * HELD_MEMORY_PER_BYTE;
      this.charged += charge;
      this.options.memory?.take(charge);
    }
    this.firstPendingAt ??= this.options.clock.now();
    if (
      this.pending.length >= this.options.policy.maxRows ||
      this.pendingBytes >= this.options.policy.maxBytes
    )
      this.kick();
  }

  /** Called on a timer: flushes what has waited long enough. */
  tick(): void {
    if (
      this.firstPendingAt !== null &&
      this.options.clock.now() - this.firstPendingAt >= this.options.policy.intervalMs
    ) {
      this.kick();
    }
  }

  /** Records everything buffered; rejects (InfrastructureFault) if the recorder stays down too long. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.loop) {
      if (this.fatalError) throw this.fatalError;
      this.kick();
      await this.loop;
    }
    if (this.fatalError) throw this.fatalError;
  }

  private reportRecorded(batch: RequestOutcome[], lines: readonly number[]): void {
    if (lines.length === 0) return;
    const onRecorded = this.options.onRecorded;
    if (!onRecorded) return;
    if (lines.length === batch.length) {
      onRecorded(batch);
      return;
    }
    const added = new Set(lines);
    onRecorded(batch.filter((o) => added.has(o.line)));
  }

  private kick(): void {
    if (this.loop || this.fatalError || this.pending.length === 0) return;
    this.loop = this.run().finally(() => (this.loop = null));
  }

  private async run(): Promise<void> {
    let delay = this.options.retry.baseMs;
    while (this.pending.length > 0 && !this.fatalError) {
      const { batch, bytes } = this.takeHead();
      try {
        const lines = await this.options.recorder.record(this.options.batchId, batch);
        this.recorded += lines.length;
        this.uncharge(bytes * HELD_MEMORY_PER_BYTE);
        this.reportRecorded(batch, lines);
        if (this.failingSince !== null) {
          this.failingSince = null;
          this.options.onHealth(true);
        }
        delay = this.options.retry.baseMs;
        // Stop after one flush unless enough arrived meanwhile for another.
        if (
          this.pending.length < this.options.policy.maxRows &&
          this.pendingBytes < this.options.policy.maxBytes
        )
          return;
      } catch (error) {
        // Back to the head of the queue, ahead of what arrived meanwhile.
        this.pending = batch.concat(this.pending);
        this.pendingBytes += bytes;
        this.firstPendingAt ??= this.options.clock.now();
        const now = this.options.clock.now();
        if (this.failingSince === null) {
          this.failingSince = now;
          this.options.onHealth(false);
        }
        if (now - this.failingSince >= this.options.retry.giveUpAfterMs) {
          this.fatalError = new InfrastructureFault(
            `could not record outcomes for ${Math.round((now - this.failingSince) / 1000)} s: ${(error as Error).message}`,
            { cause: error },
          );
          // Nothing more is recorded: what this buffer held is the chunk's to drop.
          this.uncharge(this.charged);
          this.options.onFatal(this.fatalError);
          return;
        }
        await this.options.sleep(delay);
        delay = Math.min(this.options.retry.maxMs, delay * 2);
      }
    }
  }

  /** The oldest outcomes, up to one flush's bytes (at least one), off the queue, and their bytes. */
  private takeHead(): { batch: RequestOutcome[]; bytes: number } {
    let n = 0;
    let bytes = 0;
    // Bounded by bytes, not rows: many small outcomes go in one statement, as before (each
    // statement also moves the batch's counters, on one row every chunk of the batch updates).
    while (
      n < this.pending.length &&
      (n === 0 || bytes + this.pending[n].output.length <= this.options.policy.maxBytes)
    ) {
      bytes += this.pending[n].output.length;
      n++;
    }
    const head = n === this.pending.length ? this.pending : this.pending.slice(0, n);
    this.pending = n === this.pending.length ? [] : this.pending.slice(n);
    this.pendingBytes -= bytes;
    // What stays has waited since before this flush: it keeps its place in time.
    if (this.pending.length === 0) this.firstPendingAt = null;
    return { batch: head, bytes };
  }

  private uncharge(bytes: number): void {
    if (bytes === 0) return;
    this.charged -= bytes;
    this.options.memory?.give(bytes);
  }
}
