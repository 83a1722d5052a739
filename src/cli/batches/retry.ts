import type { Batch } from '../api-client';
import { BatchAction, batchPath, positionals, stringOption } from './action';

/** `barge batches retry ID`: a new batch of the requests of an ended batch that did not succeed (Barge's POST /v1/batches/{id}/retry). */
export const retryAction: BatchAction = {
  usage: `  barge batches retry ID [--include failed,expired,cancelled] [--window 24h] [--json]
                                                   a new batch of what failed; prints its id`,
  options: { include: { type: 'string' }, window: { type: 'string' }, json: { type: 'boolean' } },
  async run(context) {
    const [id] = positionals(context, ['ID'], 'batches retry');
    const include = stringOption(context, 'include');
    const window = stringOption(context, 'window');
    const batch = await context.client.json<Batch>('POST', `${batchPath(id)}/retry`, {
      ...(include !== undefined && { include: include.split(',').map((s) => s.trim()) }),
      ...(window !== undefined && { completion_window: window }),
    });
    if (context.values.json) context.io.out(JSON.stringify(batch, null, 2));
    else {
      context.io.err(`Created ${batch.id}, retrying the requests of ${id}.`);
      context.io.out(batch.id);
    }
    return 0;
  },
};
