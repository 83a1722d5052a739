import { InfrastructureFault } from '../../common/failures';
import type { Clock } from '../../upstreams/clock';
import type { OutcomeRecorder, RequestOutcome } from '../store/work.repository';

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

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Outcomes on their way to Postgres. One flush at a time, in arrival order; a failed flush is
 * retried with backoff, never dropped: its outcomes stay at the head of the queue and later
 * answers queue behind them. `onHealth(false)` fires at the first failure (the chunk then
 * holds its requests) and `onHealth(true)` once a flush succeeds again; past
 * `giveUpAfterMs` of failure, `onFatal` fires once and nothing more is attempted.
 */
export class OutcomeBuffer {
  private pending: RequestOutcome[] = [];
  private pendingBytes = 0;
  private firstPendingAt: number | null = null;
  private loop: Promise<void> | null = null;
  private failingSince: number | null = null;
  private fatalError: InfrastructureFault | null = null;
  recorded = 0;

  constructor(
    private readonly batchId: string,
    private readonly recorder: OutcomeRecorder,
    private readonly policy: FlushPolicy,
    private readonly retry: RecordRetry,
    private readonly clock: Clock,
    private readonly sleep: Sleep,
    private readonly onHealth: (healthy: boolean) => void,
    private readonly onFatal: (error: InfrastructureFault) => void,
    /** The outcomes a flush recorded (new rows only: each outcome is reported once). */
    private readonly onRecorded: (outcomes: readonly RequestOutcome[]) => void = () => undefined,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  get fatal(): InfrastructureFault | null {
    return this.fatalError;
  }

  add(outcome: RequestOutcome): void {
    this.pending.push(outcome);
    this.pendingBytes += outcome.output.length;
    this.firstPendingAt ??= this.clock.now();
    if (this.pending.length >= this.policy.maxRows || this.pendingBytes >= this.policy.maxBytes) this.kick();
  }

  /** Called on a timer: flushes what has waited long enough. */
  tick(): void {
    if (this.firstPendingAt !== null && this.clock.now() - this.firstPendingAt >= this.policy.intervalMs) {
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
    if (lines.length === batch.length) {
      this.onRecorded(batch);
      return;
    }
    const added = new Set(lines);
    this.onRecorded(batch.filter((o) => added.has(o.line)));
  }

  private kick(): void {
    if (this.loop || this.fatalError || this.pending.length === 0) return;
    this.loop = this.run().finally(() => (this.loop = null));
  }

  private async run(): Promise<void> {
    let delay = this.retry.baseMs;
    while (this.pending.length > 0 && !this.fatalError) {
      const batch = this.pending;
      const bytes = this.pendingBytes;
      this.pending = [];
      this.pendingBytes = 0;
      this.firstPendingAt = null;
      try {
        const lines = await this.recorder.record(this.batchId, batch);
        this.recorded += lines.length;
        this.reportRecorded(batch, lines);
        if (this.failingSince !== null) {
          this.failingSince = null;
          this.onHealth(true);
        }
        delay = this.retry.baseMs;
        // Stop after one flush unless enough arrived meanwhile for another.
        if (this.pending.length < this.policy.maxRows && this.pendingBytes < this.policy.maxBytes) return;
      } catch (error) {
        // Back to the head of the queue, ahead of what arrived meanwhile.
        this.pending = batch.concat(this.pending);
        this.pendingBytes += bytes;
        this.firstPendingAt ??= this.clock.now();
        const now = this.clock.now();
        if (this.failingSince === null) {
          this.failingSince = now;
          this.onHealth(false);
        }
        if (now - this.failingSince >= this.retry.giveUpAfterMs) {
          this.fatalError = new InfrastructureFault(
            `could not record outcomes for ${Math.round((now - this.failingSince) / 1000)} s: ${(error as Error).message}`,
            { cause: error },
          );
          this.onFatal(this.fatalError);
          return;
        }
        await this.sleep(delay);
        delay = Math.min(this.retry.maxMs, delay * 2);
      }
    }
  }
}
