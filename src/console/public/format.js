// Pure helpers of the console: what a batch's numbers mean and how they read.

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

export const isTerminal = (batch) => TERMINAL.has(batch.status);

/** Requests with an outcome (an answer or a final error). */
export const doneCount = (batch) => batch.request_counts.completed + batch.request_counts.failed;

const numbers = new Intl.NumberFormat('en-US');
export const formatCount = (n) => numbers.format(n);

export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return new Date(seconds * 1000).toLocaleString();
}

export const isoTime = (seconds) => new Date(seconds * 1000).toISOString();

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const STEPS = [
  ['created', 'created_at'],
  ['in_progress', 'in_progress_at'],
  ['finalizing', 'finalizing_at'],
  ['cancelling', 'cancelling_at'],
  ['completed', 'completed_at'],
  ['failed', 'failed_at'],
  ['expired', 'expired_at'],
  ['cancelled', 'cancelled_at'],
];

/** The statuses the batch went through, in order, each with its time. */
export function timeline(batch) {
  return STEPS.filter(([, field]) => batch[field] !== null && batch[field] !== undefined)
    .map(([status, field]) => ({ status, at: batch[field] }))
    .sort((a, b) => a.at - b.at);
}

/**
 * Requests per second from the last minute of observations; before there are two of them
 * a few seconds apart, from the time since the batch started.
 */
export class RateEstimator {
  constructor(windowMs = 60_000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(atMs, done) {
    const last = this.samples[this.samples.length - 1];
    if (last && done < last.done) this.samples = []; // another batch, or a reset: start over
    this.samples.push({ atMs, done });
    while (this.samples.length > 2 && atMs - this.samples[0].atMs > this.windowMs) this.samples.shift();
  }

  /** Requests per second, or null when nothing can be said yet. */
  rate(batch, nowMs) {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first && last && last.atMs - first.atMs >= 2_000 && last.done > first.done) {
      return ((last.done - first.done) * 1000) / (last.atMs - first.atMs);
    }
    const started = batch.in_progress_at;
    const done = doneCount(batch);
    if (started && done > 0 && nowMs / 1000 - started >= 1) return done / (nowMs / 1000 - started);
    return null;
  }
}

/** Seconds until every request has an outcome at `rate`, or null when unknown. */
export function etaSeconds(batch, rate) {
  const remaining = batch.request_counts.total - doneCount(batch);
  if (!rate || remaining <= 0 || batch.status !== 'in_progress') return null;
  return remaining / rate;
}

/** One line of an error file or of the results endpoint, as the failures table shows it. */
export function failureOf(line) {
  const response = line.response ?? null;
  const bodyError = response?.body?.error ?? null;
  return {
    customId: line.custom_id ?? '',
    status: response?.status_code ?? null,
    code: line.error?.code ?? bodyError?.code ?? bodyError?.type ?? '',
    message: line.error?.message ?? bodyError?.message ?? '',
  };
}

/** The JSON lines of a JSONL text; lines that are not JSON are skipped. */
export function parseJsonl(text) {
  const lines = [];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      lines.push(JSON.parse(raw));
    } catch {
      // a torn last line (a ranged read) or garbage: not a failure to show
    }
  }
  return lines;
}
