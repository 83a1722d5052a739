import type { DataSource } from 'typeorm';
import { invalidRequest } from '../common/openai-error';
import { single } from '../common/pagination';
import { echo } from '../common/text';
import {
  costOfParts,
  priceObject,
  type CostObject,
  type PriceBook,
  type PricedPart,
  type PriceObject,
} from '../upstreams/prices';
import { invalidUsageGroupMessage, readUsageGroups, USAGE_GROUPS, type UsageGroup } from './usage-groups';

/**
 * Usage per tenant, summed from the batches' own live counters (request_counts and usage, the
 * very columns the Batch object shows), so the figures are exactly the sum of the batches'.
 * A batch counts in the period, and on the day (UTC), it was created in. Cost is each batch's
 * tokens per upstream that answered them (batch_upstream_usage, moved in the same statement)
 * at that upstream's configured price for the batch's model.
 */

export { USAGE_GROUPS, type UsageGroup };

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
  cost: CostObject;
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

/**
 * Each batch's tokens per upstream that answered them (`p`), and what no row accounts for
 * (batches recorded before batch_upstream_usage existed) as an unknown upstream (NULL).
 */
const PARTS = `CROSS JOIN LATERAL (
    SELECT u.upstream, u.input_tokens, u.output_tokens FROM batch_upstream_usage u WHERE u.batch_id = b.id
    UNION ALL
    SELECT NULL, b.input_tokens - coalesce(sum(u.input_tokens), 0), b.output_tokens - coalesce(sum(u.output_tokens), 0)
      FROM batch_upstream_usage u WHERE u.batch_id = b.id
  ) p`;

const FILTER = `WHERE ($1::text IS NULL OR b.tenant_id = $1)
  AND ($2::timestamptz IS NULL OR b.created_at >= $2)
  AND ($3::timestamptz IS NULL OR b.created_at < $3)`;

/** One batch's usage and cost, and the same per upstream that answered. */
export interface BatchUsage extends UsageFigures {
  model: string | null;
  status: string;
  cost: CostObject;
  by_upstream: {
    upstream: string | null;
    requests: { completed: number; failed: number };
    input_tokens: number;
    input_tokens_details: { cached_tokens: number };
    output_tokens: number;
    output_tokens_details: { reasoning_tokens: number };
    price: PriceObject | null;
    cost: CostObject;
  }[];
}

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
  constructor(
    private readonly db: DataSource,
    private readonly prices: PriceBook,
  ) {}

  /** Usage rows grouped as asked; without groups, one row of totals (zeros when nothing ran). */
  async aggregate(filter: UsageFilter): Promise<UsageRow[]> {
    const groups: (UsageGroup | 'tenant')[] = [
      ...(filter.byTenant ? ['tenant' as const] : []),
      ...filter.groupBy,
    ];
    const select = groups.map((g) => `${GROUP_SQL[g]} AS ${g}`);
    const params = [filter.tenantId ?? null, filter.since ?? null, filter.until ?? null];
    const groupBy = (extra: number) => {
      const n = groups.length + extra;
      return n === 0 ? '' : `GROUP BY ${Array.from({ length: n }, (_, i) => i + 1).join(', ')}`;
    };
    const rows = (await this.db.query(
      `SELECT ${[...select, SUMS].join(', ')}
         FROM batches b JOIN tenants t ON t.id = b.tenant_id
        ${FILTER}
        ${groupBy(0)} ${groups.length > 0 ? `ORDER BY ${groups.map((_, i) => `${i + 1} NULLS LAST`).join(', ')}` : ''}`,
      params,
    )) as RawRow[];
    const parts = (await this.db.query(
      `SELECT ${[...select, 'b.model AS price_model', 'p.upstream'].join(', ')},
              sum(p.input_tokens)::bigint AS input, sum(p.output_tokens)::bigint AS output
         FROM batches b JOIN tenants t ON t.id = b.tenant_id ${PARTS}
        ${FILTER}
        ${groupBy(2)}`,
      params,
    )) as (RawRow & { price_model: string | null; upstream: string | null; input: string; output: string })[];
    const keyOf = (raw: Pick<RawRow, UsageGroup | 'tenant'>) =>
      JSON.stringify(groups.map((g) => raw[g] ?? null));
    const partsByKey = new Map<string, PricedPart[]>();
    for (const part of parts) {
      const key = keyOf(part);
      if (!partsByKey.has(key)) partsByKey.set(key, []);
      partsByKey.get(key)!.push({
        model: part.price_model,
        upstream: part.upstream,
        input: Number(part.input),
        output: Number(part.output),
      });
    }
    return rows.map((raw) => {
      const keys: Record<string, unknown> = {};
      for (const g of groups) keys[g] = raw[g] ?? null;
      const cost = costOfParts(this.prices, partsByKey.get(keyOf(raw)) ?? []);
      return { ...keys, ...toFigures(raw), cost } as UsageRow;
    });
  }

  /** One batch's usage and cost, per upstream too, or null when the tenant has no such batch. */
  async batch(tenantId: string | null, batchId: string): Promise<BatchUsage | null> {
    const [raw] = (await this.db.query(
      `SELECT b.model, b.status, ${SUMS} FROM batches b WHERE ($1::text IS NULL OR b.tenant_id = $1) AND b.id = $2
        GROUP BY b.model, b.status`,
      [tenantId, batchId],
    )) as (RawRow & { status: string })[];
    if (!raw) return null;
    const model: string | null = raw.model ?? null;
    const upstreams = (await this.db.query(
      `SELECT upstream, request_completed AS completed, request_failed AS failed, input_tokens, cached_tokens,
              output_tokens, reasoning_tokens
         FROM batch_upstream_usage WHERE batch_id = $1 ORDER BY upstream`,
      [batchId],
    )) as (Omit<RawRow, 'batches' | 'total'> & { upstream: string })[];
    const figures = toFigures(raw);
    const parts: PricedPart[] = upstreams.map((u) => ({
      model,
      upstream: u.upstream,
      input: Number(u.input_tokens),
      output: Number(u.output_tokens),
    }));
    // Tokens no upstream row accounts for (recorded before they were kept per upstream).
    const rest: PricedPart = {
      model,
      upstream: null,
      input: figures.input_tokens - parts.reduce((n, p) => n + p.input, 0),
      output: figures.output_tokens - parts.reduce((n, p) => n + p.output, 0),
    };
    return {
      model,
      status: raw.status,
      ...figures,
      cost: costOfParts(this.prices, [...parts, rest]),
      by_upstream: upstreams.map((u, i) => ({
        upstream: u.upstream,
        requests: { completed: Number(u.completed), failed: Number(u.failed) },
        input_tokens: parts[i].input,
        input_tokens_details: { cached_tokens: Number(u.cached_tokens) },
        output_tokens: parts[i].output,
        output_tokens_details: { reasoning_tokens: Number(u.reasoning_tokens) },
        price: model === null ? null : priceObject(this.prices.price(model, u.upstream)),
        cost: costOfParts(this.prices, [parts[i]]),
      })),
    };
  }
}

/** The group_by parameter: comma-separated (or repeated) names out of USAGE_GROUPS, each once. */
export function parseGroupBy(value: unknown, param = 'group_by'): UsageGroup[] {
  const read = readUsageGroups(value);
  if ('groups' in read) return read.groups;
  throw invalidRequest(invalidUsageGroupMessage(param, read.invalid), param, 'invalid_value');
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
  ['cost_usd', (r) => r.cost.value],
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
