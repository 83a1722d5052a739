import { parseGroupBy, usageColumns, usageCsv, UsageGroup, UsageRow, UsageStore } from '../tenants/usage';
import { OpenAIError } from '../common/openai-error';
import type { CliIO } from './io';
import { UsageError } from './io';
import { formatTable } from './table';

export interface UsageArgs {
  tenant?: string;
  since?: string;
  until?: string;
  'group-by'?: string;
  format?: string;
  positionals: string[];
}

const FORMATS = ['table', 'json', 'csv'];

/** A date or date-time as the operator writes it (`2026-01-31`, `2026-01-31T12:00:00Z`); days are UTC. */
export function parseCliDate(flag: string, text: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const date = new Date(iso);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--${flag} wants a date (YYYY-MM-DD) or an ISO date-time, not "${text}"`);
  }
  return date;
}

/** `barge usage`: every tenant's usage (or one's), by tenant and the groups asked for. */
export async function usageCommand(
  usage: UsageStore,
  tenantIdOf: (name: string) => Promise<string | null>,
  args: UsageArgs,
  io: CliIO,
): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`usage takes no argument "${args.positionals[0]}"`);
  const format = args.format ?? 'table';
  if (!FORMATS.includes(format))
    throw new UsageError(`--format wants one of ${FORMATS.join(', ')}, not "${format}"`);
  let groupBy: UsageGroup[];
  try {
    groupBy = parseGroupBy(args['group-by'], '--group-by');
  } catch (err) {
    if (err instanceof OpenAIError) throw new UsageError(err.message);
    throw err;
  }
  const since = args.since === undefined ? undefined : parseCliDate('since', args.since);
  const until = args.until === undefined ? undefined : parseCliDate('until', args.until);
  let tenantId: string | undefined;
  if (args.tenant !== undefined) {
    tenantId = (await tenantIdOf(args.tenant)) ?? undefined;
    if (!tenantId) {
      io.err(`barge: no tenant "${args.tenant}"`);
      return 1;
    }
  }
  const rows = await usage.aggregate({ tenantId, since, until, groupBy, byTenant: true });
  const groups = ['tenant' as const, ...groupBy];
  if (format === 'json') io.out(JSON.stringify(rows, null, 2));
  else if (format === 'csv') io.out(usageCsv(rows, groups));
  else if (rows.length === 0) io.err('No batches in that period.');
  else io.out(table(rows, groups));
  return 0;
}

function table(rows: UsageRow[], groups: ('tenant' | UsageGroup)[]): string {
  const columns = usageColumns(groups);
  return formatTable(
    columns.map(([name]) => name.toUpperCase().replace(/_/g, ' ')),
    rows.map((r) => columns.map(([, get]) => String(get(r) ?? '-'))),
  );
}
