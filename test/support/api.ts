import OpenAI, { ClientOptions } from 'openai';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ApiKeyStore } from '../../src/auth/api-key-store';
import { createDataSource } from '../../src/database/data-source';
import { apiUrl, stackConfig } from './stack';

/** A tenant name no other test run uses: tests share the stack's database. */
export function uniqueTenant(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Runs `fn` with a connection to the test stack's database, closed afterwards (so no test
 * file has to remember an afterAll). The API applied the migrations already.
 */
export async function withTestDb<T>(fn: (db: DataSource) => Promise<T>): Promise<T> {
  const db = createDataSource(stackConfig(), 'barge-test');
  await db.initialize();
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

export interface TestTenant {
  tenantId: string;
  keyId: string;
  key: string;
}

/** A new key for `tenant` (created if new), made by the same code as `barge keys create`. */
export async function createTenant(tenant: string): Promise<TestTenant> {
  const { key, info } = await withTestDb((db) => new ApiKeyStore(db).create(tenant, 'test'));
  return { tenantId: info.tenantId, keyId: info.id, key };
}

/** The plain API key of a new key for `tenant`. */
export async function createTenantKey(tenant: string): Promise<string> {
  return (await createTenant(tenant)).key;
}

/** The official SDK, pointed at the test API (or at `baseUrl`, an API of the test's own). */
export function openaiFor(
  apiKey: string,
  options: Partial<ClientOptions> & { baseUrl?: string } = {},
): OpenAI {
  const { baseUrl = apiUrl(), ...rest } = options;
  return new OpenAI({ apiKey, baseURL: `${baseUrl}/v1`, ...rest });
}
