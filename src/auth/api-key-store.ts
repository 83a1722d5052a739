import { DataSource, IsNull, SelectQueryBuilder } from 'typeorm';
import { newId } from '../common/ids';
import { ApiKey } from '../database/entities/api-key.entity';
import { Tenant } from '../database/entities/tenant.entity';
import { generateApiKey, hashApiKey } from './api-key';
import type { AuthenticatedTenant } from './current-tenant.decorator';

/** A key as shown to operators: everything but the secret, which is never stored. */
export interface ApiKeyInfo {
  id: string;
  tenantId: string;
  tenantName: string;
  prefix: string;
  name: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  role: 'tenant' | 'admin';
}

export interface CreatedApiKey {
  /** The plain key (`sk-barge-...`). Shown once to whoever created it; only its hash is kept. */
  key: string;
  info: ApiKeyInfo;
  tenantCreated: boolean;
}

/** A request the key store refuses (bad tenant name); the message is meant for operators. */
export class ApiKeyError extends Error {}

const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
/** last_used_at is a hint for operators, not an audit log: write it at most this often per key. */
const TOUCH_INTERVAL_MS = 60_000;

type KeyWithTenant = ApiKey & { tenant: Tenant };

/**
 * Tenants and their API keys. A plain class over the database, shared by the API's guard and
 * the `barge keys` CLI so both follow the same rules.
 */
export class ApiKeyStore {
  /** When this process last wrote last_used_at, per key id. */
  private readonly touchedAt = new Map<string, number>();

  constructor(private readonly db: DataSource) {}

  /** Creates a key for `tenantName`, creating the tenant on first use. */
  async create(
    tenantName: string,
    label?: string,
    role: 'tenant' | 'admin' = 'tenant',
  ): Promise<CreatedApiKey> {
    if (!TENANT_NAME.test(tenantName)) {
      throw new ApiKeyError(
        `invalid tenant name "${tenantName}": 1-64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit`,
      );
    }
    return this.db.transaction(async (tx) => {
      // ON CONFLICT: two creations for a new tenant at once both end up with the same tenant.
      const inserted = await tx
        .createQueryBuilder()
        .insert()
        .into(Tenant)
        .values({ id: newId('tenant_'), name: tenantName })
        .orIgnore()
        .returning('id')
        .execute();
      const tenant = await tx.findOneByOrFail(Tenant, { name: tenantName });
      const { secret, hash, prefix } = generateApiKey();
      const key = await tx.save(
        tx.create(ApiKey, {
          id: newId('key_'),
          tenantId: tenant.id,
          keyHash: hash,
          prefix,
          name: label ?? null,
          lastUsedAt: null,
          revokedAt: null,
          role,
        }),
      );
      return { key: secret, info: toInfo({ ...key, tenant }), tenantCreated: inserted.raw.length > 0 };
    });
  }

  /** A tenant's id by its name, or null when there is none. */
  async tenantIdByName(name: string): Promise<string | null> {
    const [row] = (await this.db.query(`SELECT id FROM tenants WHERE name = $1`, [name])) as { id: string }[];
    return row?.id ?? null;
  }

  /** Every key, oldest first, optionally of one tenant. */
  async list(tenantName?: string): Promise<ApiKeyInfo[]> {
    const query = this.keysWithTenant();
    if (tenantName !== undefined) query.where('t.name = :tenantName', { tenantName });
    return (await query.getMany()).map(toInfo);
  }

  /**
   * Revokes a key; its next request is refused. Returns the key (also when it was already
   * revoked, with the original revocation time), or null when there is no such key.
   */
  async revoke(keyId: string, now = new Date()): Promise<ApiKeyInfo | null> {
    await this.db.getRepository(ApiKey).update({ id: keyId, revokedAt: IsNull() }, { revokedAt: now });
    const key = await this.keysWithTenant().where('k.id = :keyId', { keyId }).getOne();
    return key ? toInfo(key) : null;
  }

  /** The tenant a live key belongs to, or null for an unknown or revoked key. */
  async authenticate(secret: string): Promise<{ keyId: string; tenant: AuthenticatedTenant } | null> {
    const row = await this.db
      .createQueryBuilder(ApiKey, 'k')
      .innerJoin(Tenant, 't', 't.id = k.tenantId')
      .select(['k.id AS key_id', 't.id AS tenant_id', 't.name AS tenant_name', 'k.role AS role'])
      .where('k.keyHash = :hash', { hash: hashApiKey(secret) })
      .andWhere('k.revokedAt IS NULL')
      .getRawOne<{ key_id: string; tenant_id: string; tenant_name: string; role: string }>();
    if (!row) return null;
    const tenant = { id: row.tenant_id, name: row.tenant_name, ...(row.role === 'admin' && { admin: true }) };
    return { keyId: row.key_id, tenant };
  }

  /**
   * Records that a key was used, at most once a minute per key. The in-memory check spares
   * the query; the condition in SQL keeps several API processes from writing more often.
   */
  async touch(keyId: string, now = new Date()): Promise<void> {
    const last = this.touchedAt.get(keyId);
    if (last !== undefined && now.getTime() - last < TOUCH_INTERVAL_MS) return;
    this.touchedAt.set(keyId, now.getTime());
    await this.db.query(
      `UPDATE api_keys SET last_used_at = $2
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - $3 * interval '1 millisecond')`,
      [keyId, now, TOUCH_INTERVAL_MS],
    );
  }

  private keysWithTenant(): SelectQueryBuilder<KeyWithTenant> {
    return this.db
      .createQueryBuilder(ApiKey, 'k')
      .innerJoinAndMapOne('k.tenant', Tenant, 't', 't.id = k.tenantId')
      .orderBy('k.createdAt', 'ASC')
      .addOrderBy('k.id', 'ASC') as SelectQueryBuilder<KeyWithTenant>;
  }
}

function toInfo(key: KeyWithTenant): ApiKeyInfo {
  return {
    id: key.id,
    tenantId: key.tenantId,
    tenantName: key.tenant.name,
    prefix: key.prefix,
    name: key.name,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    revokedAt: key.revokedAt,
    role: key.role,
  };
}
