import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { invalidRequest } from './openai-error';
import { isIdShaped, requireStorable } from './tenant-input';
import { echo } from './text';

/**
 * Keyset pagination for OpenAI-style lists (files, batches). Rows are ordered by
 * (created_at, id), so rows created in the same instant still page stably, and the cursor is
 * the id of the last row a client has seen (`after`), which is exactly what the SDKs send.
 * Tables paged this way have `id`, `tenant_id` and `created_at` columns.
 */

export type SortOrder = 'asc' | 'desc';

export interface PageQuery {
  limit: number;
  order: SortOrder;
  after?: string;
}

export interface PageOptions {
  defaultLimit: number;
  maxLimit: number;
  defaultOrder?: SortOrder;
}

/** A page as fetched: the rows, and whether more follow. */
export interface Page<T> {
  items: T[];
  hasMore: boolean;
}

export interface ListObject<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  /** Always present: openai-node stops paging when it is missing. */
  has_more: boolean;
}

/** Reads `limit`, `order` and `after` from a query string, with OpenAI's error messages. */
export function parsePageQuery(query: Record<string, unknown>, options: PageOptions): PageQuery {
  const limit = single(query, 'limit');
  const order = single(query, 'order');
  const after = single(query, 'after');
  return {
    limit: limit === undefined ? options.defaultLimit : parseLimit(limit, options.maxLimit),
    order: order === undefined ? (options.defaultOrder ?? 'desc') : parseOrder(order),
    after: after === undefined || after === '' ? undefined : after,
  };
}

/**
 * A single-valued query parameter. A repeated one (`?limit=1&limit=2`) or a structured one
 * (`?after[x]=1`) is refused, and so is text Postgres cannot store (the boundary rule).
 */
export function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return requireStorable(value, name);
  throw invalidRequest(`Invalid '${name}': expected a single value.`, name, 'invalid_value');
}

function parseLimit(raw: string, max: number): number {
  if (!/^-?\d+$/.test(raw.trim())) {
    throw invalidRequest(
      `Invalid 'limit': expected an integer, but got '${echo(raw)}' instead.`,
      'limit',
      'invalid_type',
    );
  }
  const limit = Number(raw);
  if (limit < 1) {
    throw invalidRequest(
      `Invalid 'limit': integer below minimum value. Expected a value >= 1, but got ${limit} instead.`,
      'limit',
      'integer_below_min_value',
    );
  }
  if (limit > max) {
    throw invalidRequest(
      `Invalid 'limit': integer above maximum value. Expected a value <= ${max}, but got ${limit} instead.`,
      'limit',
      'integer_above_max_value',
    );
  }
  return limit;
}

function parseOrder(raw: string): SortOrder {
  if (raw === 'asc' || raw === 'desc') return raw;
  throw invalidRequest(
    `Invalid 'order': expected one of 'asc' or 'desc', but got '${echo(raw)}' instead.`,
    'order',
    'invalid_value',
  );
}

/**
 * One page of `query`, which selects one tenant's listable rows from its main alias. The
 * cursor row is looked up among all of the tenant's rows (deleted ones included), so a client
 * can keep paging after deleting the last item it saw; an id the tenant never had is a 400.
 */
export async function fetchPage<E extends ObjectLiteral & { id: string }>(
  query: SelectQueryBuilder<E>,
  page: PageQuery,
  /** null: any tenant's rows (an admin key's list). */
  tenantId: string | null,
): Promise<Page<E>> {
  const alias = query.alias;
  const table = query.expressionMap.mainAlias!.metadata.tableName;
  const direction = page.order === 'asc' ? 'ASC' : 'DESC';
  const paged = query.clone();
  if (page.after !== undefined) {
    const [cursor] = isIdShaped(page.after)
      ? await query.connection.query(
          `SELECT 1 FROM ${table} WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`,
          [page.after, tenantId],
        )
      : [];
    if (!cursor) {
      throw invalidRequest(
        `Invalid 'after': no object with id '${echo(page.after)}' in this list.`,
        'after',
        'invalid_value',
      );
    }
    // Compared in SQL, so the timestamps keep their full (microsecond) precision.
    paged.andWhere(
      `(${alias}.created_at, ${alias}.id) ${page.order === 'asc' ? '>' : '<'}
       (SELECT c.created_at, c.id FROM ${table} c WHERE c.id = :pageAfter)`,
      { pageAfter: page.after },
    );
  }
  const rows = await paged
    .orderBy(`${alias}.created_at`, direction)
    .addOrderBy(`${alias}.id`, direction)
    .limit(page.limit + 1)
    .getMany();
  return { items: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}

/** The list object clients expect, items presented by `present`. */
export function toListObject<E, T extends { id: string }>(
  page: Page<E>,
  present: (item: E) => T,
): ListObject<T> {
  const data = page.items.map(present);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: page.hasMore,
  };
}
