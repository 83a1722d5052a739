import type { DataSource, EntityManager } from 'typeorm';
import { InfrastructureFault } from '../common/failures';
import { SecretBox, SecretBoxError } from '../common/secret-box';
import { Secret } from '../upstreams/secret';

/**
 * A tenant's own keys for upstreams ("a Bearer token for the provider API"), sealed at rest
 * with the configured SecretBox (`secrets.encryptionKey`), opened only in the worker, right
 * before its requests are sent, into Secrets (src/upstreams/secret.ts) that no log line, JSON
 * or error message can show. Two kinds, both used only for the tenant's batches and only on
 * the upstream they name (never sent to another upstream, whatever the routing):
 * - registered, per tenant and upstream (`barge tenants set-key`), until deleted;
 * - per batch, sent on create (`x-barge-provider-key`) for the upstream the batch is pinned
 *   to; it wins over a registered key for that upstream, and is deleted when the batch ends
 *   (a trigger, migration 1765000000000).
 */

/** What the keys are: visible ASCII without spaces (a header value), of a sane length. */
const KEY_SHAPE = /^[\x21-\x7e]{1,4096}$/;

/** Why a key is refused, in words that never quote it. */
export function providerKeyProblem(key: string): string | null {
  if (key.length === 0) return 'it is empty';
  if (key.length > 4096) return 'it is longer than 4096 characters';
  if (!KEY_SHAPE.test(key)) return 'it holds spaces or characters that are not visible ASCII';
  return null;
}

/** Binds a sealed key to its row (SecretBox context): a ciphertext cannot be moved to another. */
export const tenantKeyContext = (tenantId: string, upstream: string) =>
  `tenant_provider_key:${tenantId}:${upstream}`;
export const batchKeyContext = (batchId: string, upstream: string) =>
  `batch_provider_key:${batchId}:${upstream}`;

/** The keys a batch's requests go out with, by upstream name (upstreams not listed: the operator's). */
export type ProviderCredentials = ReadonlyMap<string, Secret>;

export const NOT_CONFIGURED =
  'tenant provider keys need secrets.encryptionKey (BARGE_SECRETS_ENCRYPTION_KEY), which is not set';

export class ProviderKeyStore {
  constructor(
    private readonly db: DataSource,
    private readonly box: SecretBox | null,
  ) {}

  /** Whether keys can be stored and read here (an encryption key is configured). */
  get configured(): boolean {
    return this.box !== null;
  }

  /**
   * Registers (or replaces) a tenant's key for an upstream. Returns whether it replaced one,
   * or null when there is no such tenant.
   */
  async register(tenantName: string, upstream: string, key: string): Promise<{ replaced: boolean } | null> {
    const box = this.requireBox();
    return this.db.transaction(async (tx) => {
      const [tenant] = (await tx.query(`SELECT id FROM tenants WHERE name = $1`, [tenantName])) as {
        id: string;
      }[];
      if (!tenant) return null;
      const [row] = (await tx.query(
        `INSERT INTO tenant_provider_keys (tenant_id, upstream, key_sealed, created_at, updated_at)
         VALUES ($1, $2, $3, now(), now())
         ON CONFLICT (tenant_id, upstream) DO UPDATE SET key_sealed = EXCLUDED.key_sealed, updated_at = now()
         RETURNING (xmax <> 0) AS replaced`,
        [tenant.id, upstream, box.seal(key, tenantKeyContext(tenant.id, upstream))],
      )) as { replaced: boolean }[];
      return { replaced: row.replaced };
    });
  }

  /** Deletes a tenant's key for an upstream: whether there was one; null when there is no such tenant. */
  async remove(tenantName: string, upstream: string): Promise<boolean | null> {
    const [tenant] = (await this.db.query(`SELECT id FROM tenants WHERE name = $1`, [tenantName])) as {
      id: string;
    }[];
    if (!tenant) return null;
    const [, deleted] = (await this.db.query(
      `DELETE FROM tenant_provider_keys WHERE tenant_id = $1 AND upstream = $2`,
      [tenant.id, upstream],
    )) as [unknown, number];
    return deleted > 0;
  }

  /** The upstreams each tenant registered a key for, by tenant id (names only, never a key). */
  async registeredUpstreams(): Promise<Map<string, string[]>> {
    const rows = (await this.db.query(
      `SELECT tenant_id, array_agg(upstream ORDER BY upstream) AS upstreams
         FROM tenant_provider_keys GROUP BY tenant_id`,
    )) as { tenant_id: string; upstreams: string[] }[];
    return new Map(rows.map((r) => [r.tenant_id, r.upstreams]));
  }

  /** Inside a batch's create: keeps the key sent with it, sealed, until the batch ends. */
  async holdForBatch(tx: EntityManager, batchId: string, upstream: string, key: string): Promise<void> {
    const box = this.requireBox();
    await tx.query(
      `INSERT INTO batch_provider_keys (batch_id, upstream, key_sealed, created_at) VALUES ($1, $2, $3, now())`,
      [batchId, upstream, box.seal(key, batchKeyContext(batchId, upstream))],
    );
  }

  /**
   * The keys a batch's requests go out with: the tenant's registered ones, the batch's own
   * over them. A key that is stored but cannot be opened here (no encryption key configured
   * in this process, or one missing from secrets.previousEncryptionKeys) is an
   * InfrastructureFault, retried, never a silent fallback to the operator's key.
   */
  async forBatch(batch: { id: string; tenantId: string }): Promise<ProviderCredentials> {
    const rows = (await this.db.query(
      `SELECT 'tenant' AS kind, upstream, key_sealed FROM tenant_provider_keys WHERE tenant_id = $1
       UNION ALL
       SELECT 'batch' AS kind, upstream, key_sealed FROM batch_provider_keys WHERE batch_id = $2`,
      [batch.tenantId, batch.id],
    )) as { kind: 'tenant' | 'batch'; upstream: string; key_sealed: string }[];
    const keys = new Map<string, Secret>();
    if (rows.length === 0) return keys;
    if (!this.box)
      throw new InfrastructureFault(`batch ${batch.id} has provider keys, but ${NOT_CONFIGURED}`);
    // The batch's own last, so it replaces a registered key for the same upstream.
    for (const row of [...rows].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'batch' ? 1 : -1))) {
      const context =
        row.kind === 'batch'
          ? batchKeyContext(batch.id, row.upstream)
          : tenantKeyContext(batch.tenantId, row.upstream);
      try {
        keys.set(row.upstream, new Secret(this.box.open(row.key_sealed, context)));
      } catch (error) {
        if (!(error instanceof SecretBoxError)) throw error;
        throw new InfrastructureFault(
          `the ${row.kind === 'batch' ? "batch's" : "tenant's"} key for upstream ${row.upstream} cannot be opened: ${error.message}`,
        );
      }
    }
    return keys;
  }

  private requireBox(): SecretBox {
    if (!this.box) throw new ProviderKeysNotConfigured();
    return this.box;
  }
}

export class ProviderKeysNotConfigured extends Error {
  constructor() {
    super(NOT_CONFIGURED);
  }
}
