import type { DataSource, EntityManager } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { quotaExceeded } from '../common/openai-error';
import { echo } from '../common/text';
import { NON_TERMINAL_STATUSES } from '../database/entities/batch.entity';
import {
  describeLimit,
  effectiveLimits,
  exceeds,
  HELD_TOKENS_SQL,
  OverrideValue,
  QuotaLimits,
  QuotaName,
  QuotaOverrides,
  toStoredOverride,
} from './quotas';

type Db = DataSource | EntityManager;

/** A tenant's quotas and what it uses of them, as `barge tenants list` shows them. */
export interface TenantQuotaInfo {
  tenantId: string;
  tenantName: string;
  limits: QuotaLimits;
  overrides: QuotaOverrides;
  /** Upstreams the tenant may pin; null: every configured one. */
  allowedUpstreams: string[] | null;
  use: {
    activeBatches: number;
    storageBytes: number;
    /** Enqueued tokens held per model (the limit applies to each model on its own). */
    enqueuedTokens: Record<string, number>;
  };
}

/** The verdict on a validated batch under the enqueued-token quota. */
export type TokenAdmission = { ok: true } | { ok: false; message: string };

interface TenantRow {
  id: string;
  name: string;
  max_active_batches: string | null;
  max_storage_bytes: string | null;
  max_enqueued_tokens: string | null;
  allowed_upstreams?: string[] | null;
}

const num = (v: string | number | null): number | null => (v === null ? null : Number(v));
const overridesOf = (row: TenantRow): QuotaOverrides => ({
  maxActiveBatches: num(row.max_active_batches),
  maxStorageBytes: num(row.max_storage_bytes),
  maxEnqueuedTokens: num(row.max_enqueued_tokens),
});

const COLUMN: Record<QuotaName, string> = {
  maxActiveBatches: 'max_active_batches',
  maxStorageBytes: 'max_storage_bytes',
  maxEnqueuedTokens: 'max_enqueued_tokens',
};

/** Files a tenant stores: not deleted, not past their expiry (what it could still download). */
const STORED_FILES = `f.tenant_id = $1 AND f.deleted_at IS NULL AND (f.expires_at IS NULL OR f.expires_at > now())`;

/**
 * Tenant quotas over Postgres. Each admission (a batch create, an upload's commit, a batch
 * leaving validation) runs in the caller's transaction and first locks the tenant's row
 * (FOR NO KEY UPDATE: admissions of one tenant take turns, while inserts referencing the
 * tenant, which only take a key-share lock, go on), then counts and writes: the check and the
 * write it allows cannot interleave with another admission's.
 */
export class TenantQuotas {
  constructor(
    private readonly db: DataSource,
    private readonly defaults: BargeConfig['quotas'],
  ) {}

  /** Locks the tenant's row for the rest of `tx` and returns its limits in effect. */
  async lock(tx: EntityManager, tenantId: string): Promise<QuotaLimits> {
    const [row] = (await tx.query(
      `SELECT id, name, max_active_batches, max_storage_bytes, max_enqueued_tokens
         FROM tenants WHERE id = $1 FOR NO KEY UPDATE`,
      [tenantId],
    )) as TenantRow[];
    if (!row) throw new Error(`tenant ${tenantId} does not exist`);
    return effectiveLimits(this.defaults, overridesOf(row));
  }

  /** Inside a batch's create: a 429 when the tenant already has its limit of active batches. */
  async admitBatch(tx: EntityManager, tenantId: string): Promise<void> {
    const { maxActiveBatches: limit } = await this.lock(tx, tenantId);
    if (limit === null) return;
    const active = await this.activeBatches(tx, tenantId);
    if (exceeds(limit, active, 1)) {
      throw quotaExceeded(
        `Active batch limit reached: this tenant has ${active} active batches (validating, in progress, ` +
          `finalizing or cancelling) and its limit is ${limit}. Wait for one to end, or ask the operator ` +
          'to raise the limit.',
        'active_batch_limit_exceeded',
      );
    }
  }

  /**
   * Bytes an upload may still store before the tenant's storage quota (null: no limit). A
   * first, unlocked look, to refuse early; `admitStorage` decides.
   */
  async storageRoom(tenantId: string): Promise<{ limit: number; used: number; room: number } | null> {
    const limits = await this.limitsOf(tenantId);
    if (limits.maxStorageBytes === null) return null;
    const used = await this.storedBytes(this.db, tenantId);
    return { limit: limits.maxStorageBytes, used, room: limits.maxStorageBytes - used };
  }

  /** Inside an upload's commit: a 429 when storing `bytes` more would pass the tenant's quota. */
  async admitStorage(tx: EntityManager, tenantId: string, bytes: number): Promise<void> {
    const { maxStorageBytes: limit } = await this.lock(tx, tenantId);
    if (limit === null) return;
    const used = await this.storedBytes(tx, tenantId);
    if (exceeds(limit, used, bytes)) throw storageLimitExceeded(limit, used, bytes);
  }

  /**
   * When validation has estimated a batch (in `tx`, before it moves it to in_progress): whether
   * `estimated` tokens fit beside what the tenant's other running batches of the model hold.
   */
  async admitTokens(
    tx: EntityManager,
    batch: { id: string; tenantId: string },
    model: string | null,
    estimated: number,
  ): Promise<TokenAdmission> {
    const { maxEnqueuedTokens: limit } = await this.lock(tx, batch.tenantId);
    if (limit === null || model === null) return { ok: true };
    const held = (await this.enqueuedTokens(tx, batch.tenantId, batch.id))[model] ?? 0;
    if (!exceeds(limit, held, estimated)) return { ok: true };
    return {
      ok: false,
      message:
        `Enqueued token limit reached for model '${echo(model)}': this batch needs about ${estimated} tokens, ` +
        `the tenant's running batches of that model hold ${held}, and the limit is ${limit}. ` +
        'Submit it again once running batches have finished, or ask the operator to raise the limit.',
    };
  }

  async activeBatches(db: Db, tenantId: string): Promise<number> {
    const [row] = await db.query(
      `SELECT count(*)::int AS n FROM batches WHERE tenant_id = $1 AND status = ANY($2)`,
      [tenantId, NON_TERMINAL_STATUSES],
    );
    return row.n;
  }

  async storedBytes(db: Db, tenantId: string): Promise<number> {
    const [row] = await db.query(
      `SELECT coalesce(sum(f.bytes), 0)::bigint AS n FROM files f WHERE ${STORED_FILES}`,
      [tenantId],
    );
    return Number(row.n);
  }

  /** Tokens held per model by the tenant's batches that have not ended (but `exceptBatchId`). */
  async enqueuedTokens(db: Db, tenantId: string, exceptBatchId = ''): Promise<Record<string, number>> {
    const rows: { model: string; held: string }[] = await db.query(
      `SELECT b.model, sum(${HELD_TOKENS_SQL})::bigint AS held FROM batches b
        WHERE b.tenant_id = $1 AND b.status = ANY($2) AND b.estimated_tokens IS NOT NULL
          AND b.model IS NOT NULL AND b.id <> $3
        GROUP BY b.model ORDER BY b.model`,
      [tenantId, NON_TERMINAL_STATUSES, exceptBatchId],
    );
    return Object.fromEntries(rows.map((r) => [r.model, Number(r.held)]));
  }

  /** The upstreams the tenant may pin; null: every configured one. */
  async allowedUpstreams(tenantId: string): Promise<string[] | null> {
    const [row] = (await this.db.query(`SELECT allowed_upstreams FROM tenants WHERE id = $1`, [
      tenantId,
    ])) as {
      allowed_upstreams: string[] | null;
    }[];
    return row?.allowed_upstreams ?? null;
  }

  /**
   * Sets some of a tenant's overrides (and, when `upstreams` is given, the upstreams it may
   * pin: a list, or null for every one); null when there is no such tenant.
   */
  async set(
    tenantName: string,
    values: Partial<Record<QuotaName, OverrideValue>>,
    upstreams?: string[] | null,
  ): Promise<TenantQuotaInfo | null> {
    const entries = Object.entries(values) as [QuotaName, OverrideValue][];
    const sets = entries.map(([name], i) => `${COLUMN[name]} = $${i + 2}`);
    const params: unknown[] = [tenantName, ...entries.map(([, v]) => toStoredOverride(v))];
    if (upstreams !== undefined) {
      params.push(upstreams);
      sets.push(`allowed_upstreams = $${params.length}::text[]`);
    }
    if (sets.length > 0) {
      const [, changed] = (await this.db.query(
        `UPDATE tenants SET ${sets.join(', ')} WHERE name = $1`,
        params,
      )) as [unknown, number];
      if (changed === 0) return null;
    }
    return (await this.list(tenantName))[0] ?? null;
  }

  /** Every tenant (or one) with its limits and current use, by name. */
  async list(tenantName?: string): Promise<TenantQuotaInfo[]> {
    const rows = (await this.db.query(
      `SELECT id, name, max_active_batches, max_storage_bytes, max_enqueued_tokens, allowed_upstreams
         FROM tenants WHERE $1::text IS NULL OR name = $1 ORDER BY name`,
      [tenantName ?? null],
    )) as TenantRow[];
    const out: TenantQuotaInfo[] = [];
    for (const row of rows) {
      const overrides = overridesOf(row);
      out.push({
        tenantId: row.id,
        tenantName: row.name,
        limits: effectiveLimits(this.defaults, overrides),
        overrides,
        allowedUpstreams: row.allowed_upstreams ?? null,
        use: {
          activeBatches: await this.activeBatches(this.db, row.id),
          storageBytes: await this.storedBytes(this.db, row.id),
          enqueuedTokens: await this.enqueuedTokens(this.db, row.id),
        },
      });
    }
    return out;
  }

  private async limitsOf(tenantId: string): Promise<QuotaLimits> {
    const [row] = (await this.db.query(
      `SELECT id, name, max_active_batches, max_storage_bytes, max_enqueued_tokens FROM tenants WHERE id = $1`,
      [tenantId],
    )) as TenantRow[];
    if (!row) throw new Error(`tenant ${tenantId} does not exist`);
    return effectiveLimits(this.defaults, overridesOf(row));
  }
}

/**
 * The 429 of an upload over the tenant's storage quota: `bytes`, the upload's size; null, no
 * room is left at all; 'cut', the upload was cut when it passed the room left.
 */
export function storageLimitExceeded(limit: number, used: number, bytes: number | null | 'cut') {
  const upload =
    bytes === null
      ? 'no more can be uploaded'
      : bytes === 'cut'
        ? `this upload is larger than the ${limit - used} bytes left`
        : `this upload of ${bytes} bytes would pass it`;
  return quotaExceeded(
    `Storage limit reached: this tenant's files take ${used} bytes of its limit of ${describeLimit(limit)} bytes, ` +
      `and ${upload}. Delete files, or ask the operator to raise the limit.`,
    'storage_limit_exceeded',
  );
}
