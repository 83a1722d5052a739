import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Batch } from '../api-client';
import { BatchAction, batchPath, positionals, stringOption } from './action';

export const downloadAction: BatchAction = {
  usage: `  barge batches download ID [--out DIR]            save the output and error files, streamed,
                                                   as DIR/ID_output.jsonl and DIR/ID_error.jsonl`,
  options: { out: { type: 'string' } },
  async run(context) {
    const [id] = positionals(context, ['ID'], 'batches download');
    const dir = stringOption(context, 'out') ?? '.';
    const { client, io } = context;
    const batch = await client.json<Batch>('GET', batchPath(id));
    const files = [
      { kind: 'output', fileId: batch.output_file_id },
      { kind: 'error', fileId: batch.error_file_id },
    ].filter((f): f is { kind: string; fileId: string } => Boolean(f.fileId));
    if (files.length === 0) {
      io.err(`barge: ${batch.id} has no output or error file yet (status: ${batch.status})`);
      return 1;
    }
    await mkdir(dir, { recursive: true });
    for (const { kind, fileId } of files) {
      // Named after the batch, not the server's file name: predictable, and never a path.
      const dest = join(dir, `${batch.id}_${kind}.jsonl`);
      const bytes = await client.download(fileId, dest);
      io.out(`${dest}  ${bytes} bytes  (${fileId})`);
    }
    return 0;
  },
};
