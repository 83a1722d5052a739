import { ApiClient, ApiError, Batch, TERMINAL_STATUSES } from '../api-client';
import type { CliIO } from '../io';
import { doneOf, etaSeconds, plainLine, RateTracker, statusLine } from '../progress';
import { BatchAction, batchPath, Clock, intervalMs, positionals } from './action';

/** Polls that fail for a reason of the server's or the network's before a watch gives up. */
const MAX_TRANSIENT_FAILURES = 30;

/**
 * Polls the batch until it ends. On a terminal: one line redrawn in place (bar, counts, rate,
 * ETA); otherwise: a timestamped line whenever the status or the counts change.
 */
export async function watchBatch(
  client: Pick<ApiClient, 'json'>,
  id: string,
  io: CliIO,
  options: { intervalMs: number; clock: Clock },
): Promise<Batch> {
  const rates = new RateTracker();
  const tty = io.tty && io.write ? io : undefined;
  let lastPlain = '';
  let failures = 0;
  for (;;) {
    let batch: Batch;
    try {
      batch = await client.json<Batch>('GET', batchPath(id));
      failures = 0;
    } catch (err) {
      if (!(err instanceof ApiError) || !err.transient || ++failures >= MAX_TRANSIENT_FAILURES) {
        if (tty) io.write!('\n');
        throw err;
      }
      const note = `${id}: ${err.message}; retrying`;
      if (tty) io.write!(`\r\x1b[2K${note.slice(0, io.tty!.columns - 1)}`);
      else io.err(`barge: ${note}`);
      await options.clock.sleep(options.intervalMs);
      continue;
    }
    const now = options.clock.now();
    rates.add(now, doneOf(batch));
    const ended = TERMINAL_STATUSES.includes(batch.status);
    const rate = ended ? null : rates.rate();
    const eta = etaSeconds(batch, rate);
    if (tty) {
      io.write!(`\r\x1b[2K${statusLine(batch, rate, eta, io.tty!.columns)}`);
      if (ended) io.write!('\n');
    } else {
      const state = `${batch.status} ${doneOf(batch)} ${batch.request_counts?.failed ?? 0}`;
      if (state !== lastPlain) io.out(plainLine(batch, rate, eta, now));
      lastPlain = state;
    }
    if (ended) return batch;
    await options.clock.sleep(options.intervalMs);
  }
}

/** What an ended batch left and where its files are; the exit code (0 only when completed). */
export function reportEnd(batch: Batch, client: Pick<ApiClient, 'url'>, io: CliIO): number {
  const counts = batch.request_counts;
  io.out(
    counts && counts.total > 0
      ? `${batch.id} ${batch.status}: ${counts.completed} of ${counts.total} requests completed, ${counts.failed} failed`
      : `${batch.id} ${batch.status}`,
  );
  const errors = batch.errors?.data ?? [];
  for (const e of errors.slice(0, 10)) {
    io.out(`  ${e.line ? `line ${e.line}: ` : ''}${e.code ?? 'error'}: ${e.message ?? ''}`);
  }
  if (errors.length > 10) io.out(`  ... and ${errors.length - 10} more (barge batches get ${batch.id})`);
  if (batch.output_file_id) {
    io.out(`  output: ${batch.output_file_id}  ${client.url(`/files/${batch.output_file_id}/content`)}`);
  }
  if (batch.error_file_id) {
    io.out(`  errors: ${batch.error_file_id}  ${client.url(`/files/${batch.error_file_id}/content`)}`);
  }
  if (batch.output_file_id || batch.error_file_id) io.out(`  download: barge batches download ${batch.id}`);
  return batch.status === 'completed' ? 0 : 1;
}

export const watchAction: BatchAction = {
  usage: `  barge batches watch ID [--interval S]            follow a batch until it ends (exit 0 if completed)`,
  options: { interval: { type: 'string' } },
  async run(context) {
    const [id] = positionals(context, ['ID'], 'batches watch');
    const interval = intervalMs(context);
    const batch = await watchBatch(context.client, id, context.io, {
      intervalMs: interval,
      clock: context.clock,
    });
    return reportEnd(batch, context.client, context.io);
  },
};
