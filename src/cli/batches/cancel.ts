import type { Batch } from '../api-client';
import { BatchAction, batchPath, positionals } from './action';

export const cancelAction: BatchAction = {
  usage: `  barge batches cancel ID                          cancel a batch (finished results are kept)`,
  options: {},
  async run(context) {
    const [id] = positionals(context, ['ID'], 'batches cancel');
    const batch = await context.client.json<Batch>('POST', `${batchPath(id)}/cancel`);
    context.io.out(`${batch.id} ${batch.status}`);
    return 0;
  },
};
