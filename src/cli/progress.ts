import type { Batch } from './api-client';

/** How a batch's progress reads in the terminal: pure functions, so tests need no terminal. */

/** Requests with an outcome (answered, or failed for good). */
export function doneOf(batch: Batch): number {
  const counts = batch.request_counts;
  return counts ? counts.completed + counts.failed : 0;
}

interface Sample {
  atMs: number;
  done: number;
}

/** Requests per second over a sliding window of observations. */
export class RateTracker {
  private samples: Sample[] = [];

  constructor(private readonly windowMs = 30_000) {}

  add(atMs: number, done: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && done < last.done) this.samples = []; // counts went back: start over
    this.samples.push({ atMs, done });
    while (this.samples.length > 2 && atMs - this.samples[0].atMs > this.windowMs) this.samples.shift();
  }

  /** Null until two observations at least a second apart show progress. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.atMs - first.atMs < 1_000 || last.done <= first.done) return null;
    return ((last.done - first.done) * 1000) / (last.atMs - first.atMs);
  }
}

/** Seconds until every request has an outcome at `rate`; null when unknown. */
export function etaSeconds(batch: Batch, rate: number | null): number | null {
  const total = batch.request_counts?.total ?? 0;
  const remaining = total - doneOf(batch);
  if (!rate || remaining <= 0 || batch.status !== 'in_progress') return null;
  return remaining / rate;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

const count = (n: number) => n.toLocaleString('en-US');

export function formatRate(rate: number): string {
  return rate < 10 ? `${rate.toFixed(1)}/s` : `${count(Math.round(rate))}/s`;
}

/** `[████░░░░]` of `width` cells. */
export function bar(fraction: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

function parts(batch: Batch, rate: number | null, eta: number | null): string[] {
  const counts = batch.request_counts;
  const total = counts?.total ?? 0;
  const out: string[] = [];
  if (total > 0) {
    out.push(`${count(doneOf(batch))}/${count(total)} done`);
    if (counts!.failed > 0) out.push(`${count(counts!.failed)} failed`);
  }
  if (rate !== null) out.push(formatRate(rate));
  if (eta !== null) out.push(`ETA ${formatDuration(eta)}`);
  return out;
}

/**
 * One terminal line, redrawn in place: id, status, bar, percentage, counts, rate, ETA. The
 * bar takes what the other fields leave of the terminal's width (none when it is too narrow).
 */
export function statusLine(batch: Batch, rate: number | null, eta: number | null, columns: number): string {
  const total = batch.request_counts?.total ?? 0;
  const fraction = total > 0 ? doneOf(batch) / total : 0;
  const percent = total > 0 ? `${Math.floor(fraction * 100)}%`.padStart(4) : '';
  const rest = parts(batch, rate, eta).join('  ');
  const head = `${batch.id}  ${batch.status}`;
  const fixed = head.length + percent.length + rest.length + 6;
  const width = Math.min(40, columns - 1 - fixed - 2);
  const fields = [head];
  if (total > 0 && width >= 10) fields.push(bar(fraction, width));
  if (percent) fields.push(percent.trim());
  if (rest) fields.push(rest);
  const line = fields.join('  ');
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
}

/** One line for a log (stdout is not a terminal): a timestamp and the same facts, no bar. */
export function plainLine(batch: Batch, rate: number | null, eta: number | null, atMs: number): string {
  const at = new Date(atMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const rest = parts(batch, rate, eta);
  return [at, batch.id, batch.status, ...(rest.length ? [rest.join(', ')] : [])].join(' ');
}
