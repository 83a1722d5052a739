import type { DataSource } from 'typeorm';
import { invalidRequest } from '../common/openai-error';
import { single } from '../common/pagination';
import { echo } from '../common/text';

/**
 * Usage per tenant, summed from the batches' own live counters (request_counts and usage, the
 * very columns the Batch object shows), so the figures are exactly the sum of the batches'.
 * A batch counts in the period, and on the day (UTC), it was created in.
 */

export const USAGE_GROUPS = ['model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageFilter {
  tenantId?: string;
  /** Batches created at or after this... */
  since?: Date;
  /** ...and before this. */
  until?: Date;
  groupBy: UsageGroup[];
  /** Adds the tenant's name to each row and groups by it (the operator's view across tenants). */
  byTenant?: boolean;
}

export interface UsageFigures {
  batches: number;
  requests: { total: number; completed: number; failed: number };
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface UsageRow extends UsageFigures {
  tenant?: string;
  model?: string | null;
  /** YYYY-MM-DD, UTC. */
  day?: string;
}

interface RawRow {
  tenant?: string;
  model?: string | null;
  day?: string;
  batches: number;
  total: string;
  completed: string;
  failed: string;
  input_tokens: string;
  cached_tokens: string;
  output_tokens: string;
  reasoning_tokens: string;
}

const SUMS = `count(*)::int AS batches,
  coalesce(sum(b.request_total), 0)::bigint AS total,
  coalesce(sum(b.request_completed), 0)::bigint AS completed,
  coalesce(sum(b.request_failed), 0)::bigint AS failed,
  coalesce(sum(b.input_tokens), 0)::bigint AS input_tokens,
  coalesce(sum(b.cached_tokens), 0)::bigint AS cached_tokens,
  coalesce(sum(b.output_tokens), 0)::bigint AS output_tokens,
  coalesce(sum(b.reasoning_tokens), 0)::bigint AS reasoning_tokens`;

const GROUP_SQL: Record<UsageGroup | 'tenant', string> = {
  tenant: 't.name',
  model: 'b.model',
  day: `to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
};

export function toFigures(raw: Omit<RawRow, 'tenant' | 'model' | 'day'>): UsageFigures {
  const n = (v: string | number) => Number(v);
  return {
    batches: raw.batches,
    requests: { total: n(raw.total), completed: n(raw.completed), failed: n(raw.failed) },
    input_tokens: n(raw.input_tokens),
    input_tokens_details: { cached_tokens: n(raw.cached_tokens) },
    output_tokens: n(raw.output_tokens),
    output_tokens_details: { reasoning_tokens: n(raw.reasoning_tokens) },
    total_tokens: n(raw.input_tokens) + n(raw.output_tokens),
  };
}

export class UsageStore {
  constructor(private readonly db: DataSource) {}

  /** Usage rows grouped as asked; without groups, one row of totals (zeros when nothing ran). */
  async aggregate(filter: UsageFilter): Promise<UsageRow[]> {
    const groups: (UsageGroup | 'tenant')[] = [
      ...(filter.byTenant ? ['tenant' as const] : []),
      ...filter.groupBy,
    ];
    const select = groups.map((g) => `${GROUP_SQL[g]} AS ${g}`);
    const rows = (await this.db.query(
      `SELECT ${[...select, SUMS].join(', ')}
         FROM batches b JOIN tenants t ON t.id = b.tenant_id
        WHERE ($1::text IS NULL OR b.tenant_id = $1)
          AND ($2::timestamptz IS NULL OR b.created_at >= $2)
          AND ($3::timestamptz IS NULL OR b.created_at < $3)
        ${groups.length > 0 ? `GROUP BY ${groups.map((_, i) => i + 1).join(', ')} ORDER BY ${groups.map((_, i) => `${i + 1} NULLS LAST`).join(', ')}` : ''}`,
      [filter.tenantId ?? null, filter.since ?? null, filter.until ?? null],
    )) as RawRow[];
    return rows.map((raw) => {
      const keys: Record<string, unknown> = {};
      for (const g of groups) keys[g] = raw[g] ?? null;
      return { ...keys, ...toFigures(raw) } as UsageRow;
    });
  }

  /** One batch's usage (its own counters), or null when the tenant has no such batch. */
  async batch(
    tenantId: string | null,
    batchId: string,
  ): Promise<(UsageFigures & { model: string | null; status: string }) | null> {
    const [raw] = (await this.db.query(
      `SELECT b.model, b.status, ${SUMS} FROM batches b WHERE ($1::text IS NULL OR b.tenant_id = $1) AND b.id = $2
        GROUP BY b.model, b.status`,
      [tenantId, batchId],
    )) as (RawRow & { status: string })[];
    if (!raw) return null;
    return { model: raw.model ?? null, status: raw.status, ...toFigures(raw) };
  }
}

/** The group_by parameter: comma-separated (or repeated) names out of USAGE_GROUPS, each once. */
export function parseGroupBy(value: unknown, param = 'group_by'): UsageGroup[] {
  if (value === undefined || value === '') return [];
  const parts = (Array.isArray(value) ? value : [value]).flatMap((v) =>
    typeof v === 'string' ? v.split(',') : [v],
  );
  const out: UsageGroup[] = [];
  for (const part of parts) {
    const name = typeof part === 'string' ? part.trim() : part;
    if (!(USAGE_GROUPS as readonly unknown[]).includes(name)) {
      throw invalidRequest(
        `Invalid value for '${param}': ${echo(String(name))}. Supported: ${USAGE_GROUPS.join(', ')}.`,
        param,
        'invalid_value',
      );
    }
    if (!out.includes(name as UsageGroup)) out.push(name as UsageGroup);
  }
  return out;
}

/** A Unix-seconds query parameter (start_time, end_time), as OpenAI's usage API takes them. */
export function parseUnixSeconds(query: Record<string, unknown>, name: string): Date | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,12}$/.test(raw)) {
    throw invalidRequest(
      `Invalid '${name}': expected Unix seconds (an integer), but got '${echo(raw)}' instead.`,
      name,
      'invalid_type',
    );
  }
  return new Date(Number(raw) * 1000);
}

const CSV_COLUMNS: [string, (r: UsageRow) => unknown][] = [
  ['tenant', (r) => r.tenant],
  ['model', (r) => r.model],
  ['day', (r) => r.day],
  ['batches', (r) => r.batches],
  ['requests_total', (r) => r.requests.total],
  ['requests_completed', (r) => r.requests.completed],
  ['requests_failed', (r) => r.requests.failed],
  ['input_tokens', (r) => r.input_tokens],
  ['cached_tokens', (r) => r.input_tokens_details.cached_tokens],
  ['output_tokens', (r) => r.output_tokens],
  ['reasoning_tokens', (r) => r.output_tokens_details.reasoning_tokens],
  ['total_tokens', (r) => r.total_tokens],
];

/** The columns a set of rows has (group columns only when grouped by them). */
export function usageColumns(groups: (UsageGroup | 'tenant')[]) {
  return CSV_COLUMNS.filter(
    ([name]) => !['tenant', 'model', 'day'].includes(name) || groups.includes(name as UsageGroup),
  );
}

/** RFC 4180 CSV with a header line. */
export function usageCsv(rows: UsageRow[], groups: (UsageGroup | 'tenant')[]): string {
  const columns = usageColumns(groups);
  const field = (v: unknown) => {
    const text = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [
    columns.map(([n]) => n).join(','),
    ...rows.map((r) => columns.map(([, get]) => field(get(r))).join(',')),
  ].join('\n');
}
