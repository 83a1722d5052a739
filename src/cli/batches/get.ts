import type { Batch } from '../api-client';
import { BatchAction, batchPath, positionals } from './action';

export const getAction: BatchAction = {
  usage: `  barge batches get ID                             the Batch object, as JSON`,
  options: {},
  async run(context) {
    const [id] = positionals(context, ['ID'], 'batches get');
    context.io.out(JSON.stringify(await context.client.json<Batch>('GET', batchPath(id)), null, 2));
    return 0;
  },
};
