import type { DataSource, EntityManager } from 'typeorm';
import { invalidRequest } from '../common/openai-error';
import type { Page, PageQuery } from '../common/pagination';
import { isIdShaped } from '../common/tenant-input';
import { echo } from '../common/text';
import type { PayloadKind, StoredEvent } from './events';

/** The tables of migration 1764300000000, in SQL (no entities: nothing else maps them). */

export interface WebhookEndpoint {
  id: string;
  tenantId: string;
  url: string;
  name: string | null;
  eventTypes: string[];
  payload: PayloadKind;
  status: 'enabled' | 'disabled';
  disabledReason: string | null;
  disabledAt: Date | null;
  secretSealed: string | null;
  secretHint: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: Date | null;
  lastSuccessAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookAttempt {
  id: string;
  tenantId: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  attempt: number;
  status: 'succeeded' | 'failed' | 'skipped';
  responseStatus: number | null;
  responseBody: string | null;
  error: string | null;
  durationMs: number | null;
  nextAttemptAt: Date | null;
  test: boolean;
  createdAt: Date;
}

type Row = Record<string, unknown>;
const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

function toEndpoint(r: Row): WebhookEndpoint {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    url: r.url as string,
    name: (r.name as string | null) ?? null,
    eventTypes: r.event_types as string[],
    payload: r.payload as PayloadKind,
    status: r.status as 'enabled' | 'disabled',
    disabledReason: (r.disabled_reason as string | null) ?? null,
    disabledAt: date(r.disabled_at),
    secretSealed: (r.secret_sealed as string | null) ?? null,
    secretHint: r.secret_hint as string,
    previousSecretSealed: (r.previous_secret_sealed as string | null) ?? null,
    previousSecretExpiresAt: date(r.previous_secret_expires_at),
    lastSuccessAt: date(r.last_success_at),
    createdAt: date(r.created_at)!,
    updatedAt: date(r.updated_at)!,
  };
}

function toAttempt(r: Row): WebhookAttempt {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    endpointId: r.endpoint_id as string,
    eventId: r.event_id as string,
    eventType: r.event_type as string,
    attempt: Number(r.attempt),
    status: r.status as WebhookAttempt['status'],
    responseStatus: r.response_status === null ? null : Number(r.response_status),
    responseBody: (r.response_body as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    nextAttemptAt: date(r.next_attempt_at),
    test: r.test as boolean,
    createdAt: date(r.created_at)!,
  };
}

/** Columns an update may set. */
export interface EndpointChanges {
  url?: string;
  name?: string | null;
  eventTypes?: string[];
  payload?: PayloadKind;
  status?: 'enabled' | 'disabled';
}

export class WebhookRepository {
  constructor(private readonly db: DataSource) {}

  async insertEndpoint(endpoint: WebhookEndpoint): Promise<void> {
    await this.db.query(
      `INSERT INTO webhook_endpoints (id, tenant_id, url, name, event_types, payload, status, secret_sealed,
         secret_hint, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
      [
        endpoint.id,
        endpoint.tenantId,
        endpoint.url,
        endpoint.name,
        endpoint.eventTypes,
        endpoint.payload,
        endpoint.status,
        endpoint.secretSealed,
        endpoint.secretHint,
        endpoint.createdAt,
      ],
    );
  }

  /** Live endpoints of a tenant, for the per-tenant cap. */
  async countEndpoints(tenantId: string, tx?: EntityManager): Promise<number> {
    const [row] = await (tx ?? this.db).query(
      `SELECT count(*)::int AS n FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL`,
      [tenantId],
    );
    return row.n;
  }

  /** The endpoint, if it exists and is not deleted; `tenantId` null: any tenant's (the worker). */
  async endpoint(id: string, tenantId: string | null): Promise<WebhookEndpoint | null> {
    const rows: Row[] = await this.db.query(
      `SELECT * FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
      [id, tenantId],
    );
    return rows.length ? toEndpoint(rows[0]) : null;
  }

  /** Newest first, keyset-paged by id like every OpenAI list. */
  async listEndpoints(tenantId: string, page: PageQuery): Promise<Page<WebhookEndpoint>> {
    return this.page(
      'webhook_endpoints',
      'tenant_id = $1 AND deleted_at IS NULL',
      [tenantId],
      page,
      toEndpoint,
    );
  }

  async listAttempts(
    tenantId: string,
    endpointId: string,
    page: PageQuery,
    eventId?: string,
  ): Promise<Page<WebhookAttempt>> {
    return this.page(
      'webhook_attempts',
      'tenant_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR event_id = $3)',
      [tenantId, endpointId, eventId ?? null],
      page,
      toAttempt,
    );
  }

  private async page<T>(
    table: string,
    where: string,
    params: unknown[],
    page: PageQuery,
    map: (r: Row) => T,
  ): Promise<Page<T>> {
    const args = [...params];
    let cursor = '';
    if (page.after !== undefined) {
      const [found] = isIdShaped(page.after)
        ? await this.db.query(`SELECT 1 FROM ${table} WHERE id = $1 AND tenant_id = $2`, [
            page.after,
            params[0],
          ])
        : [];
      if (!found) {
        throw invalidRequest(
          `Invalid 'after': no object with id '${echo(page.after)}' in this list.`,
          'after',
          'invalid_value',
        );
      }
      args.push(page.after);
      const op = page.order === 'asc' ? '>' : '<';
      cursor = `AND (created_at, id) ${op} (SELECT c.created_at, c.id FROM ${table} c WHERE c.id = $${args.length})`;
    }
    const direction = page.order === 'asc' ? 'ASC' : 'DESC';
    args.push(page.limit + 1);
    const rows: Row[] = await this.db.query(
      `SELECT * FROM ${table} WHERE ${where} ${cursor}
        ORDER BY created_at ${direction}, id ${direction} LIMIT $${args.length}`,
      args,
    );
    return { items: rows.slice(0, page.limit).map(map), hasMore: rows.length > page.limit };
  }

  /** Applies `changes`; the endpoint after, or null when it is gone. Re-enabling clears why it was disabled. */
  async updateEndpoint(
    tenantId: string,
    id: string,
    changes: EndpointChanges,
  ): Promise<WebhookEndpoint | null> {
    // An UPDATE through query() answers [rows, affected count].
    const [rows] = (await this.db.query(
      `UPDATE webhook_endpoints SET
         url = coalesce($3, url),
         name = CASE WHEN $4::boolean THEN $5 ELSE name END,
         event_types = coalesce($6, event_types),
         payload = coalesce($7, payload),
         status = coalesce($8, status),
         disabled_reason = CASE WHEN $8 = 'enabled' THEN NULL WHEN $8 = 'disabled' AND status = 'enabled'
                                THEN 'Disabled through the API.' ELSE disabled_reason END,
         disabled_at = CASE WHEN $8 = 'enabled' THEN NULL WHEN $8 = 'disabled' AND status = 'enabled'
                            THEN now() ELSE disabled_at END,
         updated_at = now()
       WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL
       RETURNING *`,
      [
        id,
        tenantId,
        changes.url ?? null,
        changes.name !== undefined,
        changes.name ?? null,
        changes.eventTypes ?? null,
        changes.payload ?? null,
        changes.status ?? null,
      ],
    )) as [Row[], number];
    return rows.length ? toEndpoint(rows[0]) : null;
  }

  /** A new secret; the old one stays valid until `previousExpiresAt` (null: not at all). */
  async rotateSecret(
    tenantId: string,
    id: string,
    secret: { sealed: string; hint: string },
    previousExpiresAt: Date | null,
  ): Promise<WebhookEndpoint | null> {
    const [rows] = (await this.db.query(
      `UPDATE webhook_endpoints SET
         previous_secret_sealed = CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE secret_sealed END,
         previous_secret_expires_at = $5,
         secret_sealed = $3, secret_hint = $4, updated_at = now()
       WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL
       RETURNING *`,
      [id, tenantId, secret.sealed, secret.hint, previousExpiresAt],
    )) as [Row[], number];
    return rows.length ? toEndpoint(rows[0]) : null;
  }

  /** Soft delete: the row stays for the delivery history, its secrets do not. */
  async deleteEndpoint(tenantId: string, id: string): Promise<boolean> {
    const [rows] = (await this.db.query(
      `UPDATE webhook_endpoints SET deleted_at = now(), secret_sealed = NULL, previous_secret_sealed = NULL,
         updated_at = now()
       WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL RETURNING id`,
      [id, tenantId],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  async insertAttempt(attempt: WebhookAttempt): Promise<void> {
    await this.db.query(
      `INSERT INTO webhook_attempts (id, tenant_id, endpoint_id, event_id, event_type, attempt, status,
         response_status, response_body, error, duration_ms, next_attempt_at, test, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        attempt.id,
        attempt.tenantId,
        attempt.endpointId,
        attempt.eventId,
        attempt.eventType,
        attempt.attempt,
        attempt.status,
        attempt.responseStatus,
        attempt.responseBody,
        attempt.error,
        attempt.durationMs,
        attempt.nextAttemptAt,
        attempt.test,
        attempt.createdAt,
      ],
    );
  }

  async markDelivered(endpointId: string, at: Date): Promise<void> {
    await this.db.query(
      `UPDATE webhook_endpoints SET last_success_at = greatest(last_success_at, $2) WHERE id = $1`,
      [endpointId, at],
    );
  }

  /**
   * Disables an endpoint that nothing was delivered to since `since` (the first attempt of a
   * delivery that was given up). True when this call disabled it.
   */
  async disableIfFailingSince(endpointId: string, since: Date, reason: string): Promise<boolean> {
    const [rows] = (await this.db.query(
      `UPDATE webhook_endpoints SET status = 'disabled', disabled_at = now(), disabled_reason = $3, updated_at = now()
        WHERE id = $1 AND status = 'enabled' AND deleted_at IS NULL
          AND (last_success_at IS NULL OR last_success_at < $2)
        RETURNING id`,
      [endpointId, since, reason],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  async event(id: string): Promise<(StoredEvent & { tenantId: string }) | null> {
    const rows: Row[] = await this.db.query(
      `SELECT id, tenant_id, type, data, created_at FROM webhook_events WHERE id = $1`,
      [id],
    );
    if (!rows.length) return null;
    const r = rows[0];
    return {
      id: r.id as string,
      tenantId: r.tenant_id as string,
      type: r.type as string,
      data: r.data as StoredEvent['data'],
      createdAt: date(r.created_at)!,
    };
  }

  /** The endpoints an event goes to: its tenant's, subscribed, enabled and existing when it happened. */
  async targets(eventId: string): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT e.id FROM webhook_events ev
         JOIN webhook_endpoints e ON e.tenant_id = ev.tenant_id
        WHERE ev.id = $1 AND e.deleted_at IS NULL AND e.status = 'enabled'
          AND ev.type = ANY (e.event_types) AND e.created_at <= ev.created_at
        ORDER BY e.created_at, e.id`,
      [eventId],
    );
    return rows.map((r) => r.id);
  }

  /** Events whose delivery workflow has not been started yet, oldest first. */
  async unstartedEvents(limit: number): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT id FROM webhook_events WHERE workflow_started_at IS NULL ORDER BY created_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }

  async markStarted(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.query(
      `UPDATE webhook_events SET workflow_started_at = now() WHERE id = ANY($1) AND workflow_started_at IS NULL`,
      [eventIds],
    );
  }

  /** Forgets delivered events and attempts older than `before` (their workflows are long closed). */
  async sweepBefore(before: Date): Promise<number> {
    const [, attempts] = (await this.db.query(`DELETE FROM webhook_attempts WHERE created_at < $1`, [
      before,
    ])) as [unknown, number];
    const [, events] = (await this.db.query(
      `DELETE FROM webhook_events WHERE created_at < $1 AND workflow_started_at IS NOT NULL`,
      [before],
    )) as [unknown, number];
    return attempts + events;
  }
}
