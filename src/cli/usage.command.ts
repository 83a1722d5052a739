import { usageColumns, usageCsv, UsageGroup, UsageRow, UsageStore } from '../tenants/usage';
import type { CliIO } from './io';
import type { RequestOf } from './operator-requests';
import { formatTable } from './table';

/** `barge usage`, its arguments checked (operator-requests.ts): every tenant's usage (or one's), by tenant and the groups asked for. */
export async function usageCommand(
  usage: UsageStore,
  tenantIdOf: (name: string) => Promise<string | null>,
  request: RequestOf<'usage'>,
  io: CliIO,
): Promise<number> {
  const { since, until, groupBy, format } = request;
  let tenantId: string | undefined;
  if (request.tenant !== undefined) {
    tenantId = (await tenantIdOf(request.tenant)) ?? undefined;
    if (!tenantId) {
      io.err(`barge: no tenant "${request.tenant}"`);
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
