import { stat } from 'node:fs/promises';
import type { Batch } from '../api-client';
import { UsageError } from '../io';
import { formatDuration } from '../progress';
import { BatchAction, intervalMs, positionals, stringOption, stringsOption } from './action';
import { reportEnd, watchBatch } from './watch';

/** `--metadata key=value`, repeatable, into OpenAI's metadata object. */
function metadataOf(pairs: string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--metadata takes key=value, not "${pair}"`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return metadata;
}

export const submitAction: BatchAction = {
  usage: `  barge batches submit FILE --endpoint PATH [--window 24h] [--metadata k=v]... [--watch]
                                                   upload a JSONL file and create a batch over it;
                                                   its id is the last line (with --watch: follow it)`,
  options: {
    endpoint: { type: 'string' },
    window: { type: 'string' },
    metadata: { type: 'string', multiple: true },
    watch: { type: 'boolean' },
    interval: { type: 'string' },
  },
  async run(context) {
    const [file] = positionals(context, ['FILE'], 'batches submit');
    const endpoint = stringOption(context, 'endpoint');
    if (!endpoint) throw new UsageError('batches submit needs --endpoint (e.g. /v1/chat/completions)');
    const metadata = metadataOf(stringsOption(context, 'metadata'));
    const interval = intervalMs(context);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) throw new UsageError(`no such file: ${file}`);

    const { io, client, clock } = context;
    const started = clock.now();
    let lastDrawn = 0;
    const uploaded = await client.upload(file, 'batch', (sent, total) => {
      // Upload progress only where it can be redrawn, at most ten times a second.
      if (!io.tty || !io.write || clock.now() - lastDrawn < 100) return;
      lastDrawn = clock.now();
      io.write(`\r\x1b[2Kuploading ${file}  ${Math.floor((sent / Math.max(total, 1)) * 100)}%`);
    });
    if (io.tty && io.write) io.write('\r\x1b[2K');
    io.err(
      `Uploaded ${file} as ${uploaded.id} (${uploaded.bytes} bytes, ${formatDuration((clock.now() - started) / 1000)}).`,
    );
    const batch = await client.json<Batch>('POST', '/batches', {
      input_file_id: uploaded.id,
      endpoint,
      completion_window: stringOption(context, 'window') ?? '24h',
      ...(metadata && { metadata }),
    });
    io.err(`Created ${batch.id} (${batch.status}).`);
    io.out(batch.id);
    if (!context.values.watch) return 0;
    const ended = await watchBatch(client, batch.id, io, { intervalMs: interval, clock });
    return reportEnd(ended, client, io);
  },
};
