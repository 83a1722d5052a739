import type { BatchList } from '../api-client';
import { UsageError } from '../io';
import { doneOf } from '../progress';
import { formatTable } from '../table';
import { BatchAction, stringOption } from './action';

const COLUMNS = ['ID', 'STATUS', 'ENDPOINT', 'DONE', 'FAILED', 'TOTAL', 'CREATED'];

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const listAction: BatchAction = {
  usage: `  barge batches list [--limit N] [--after ID] [--json]
                                                   your batches, newest first`,
  options: { limit: { type: 'string' }, after: { type: 'string' }, json: { type: 'boolean' } },
  async run(context) {
    if (context.positionals.length > 0)
      throw new UsageError(`batches list takes no argument "${context.positionals[0]}"`);
    const limit = stringOption(context, 'limit') ?? '20';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 100) {
      throw new UsageError(`--limit must be a number from 1 to 100, not "${limit}"`);
    }
    const query = new URLSearchParams({ limit });
    const after = stringOption(context, 'after');
    if (after) query.set('after', after);
    const page = await context.client.json<BatchList>('GET', `/batches?${query}`);
    const { io } = context;
    if (context.values.json) {
      io.out(JSON.stringify(page, null, 2));
      return 0;
    }
    if (page.data.length === 0) {
      io.err('No batches yet.');
      return 0;
    }
    io.out(
      formatTable(
        COLUMNS,
        page.data.map((b) => [
          b.id,
          b.status,
          b.endpoint,
          String(doneOf(b)),
          String(b.request_counts?.failed ?? 0),
          String(b.request_counts?.total ?? 0),
          iso(b.created_at),
        ]),
      ),
    );
    if (page.has_more) io.err(`More: barge batches list --after ${page.data[page.data.length - 1].id}`);
    return 0;
  },
};
