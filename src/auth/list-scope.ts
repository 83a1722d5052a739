import { invalidRequest } from '../common/openai-error';
import { single } from '../common/pagination';
import { echo } from '../common/text';
import type { ApiKeyStore } from './api-key-store';
import { type AuthenticatedTenant, readScope } from './current-tenant.decorator';

/**
 * The tenant whose objects a read (GET /v1/batches, GET /v1/usage) covers, with the query's
 * `tenant` (a tenant's name): an admin key reads every tenant's (null), or the one named; a
 * tenant key reads its own, and may name only itself.
 */
export async function listScope(
  keys: ApiKeyStore,
  tenant: AuthenticatedTenant,
  query: Record<string, unknown>,
): Promise<string | null> {
  const name = single(query, 'tenant');
  if (name === undefined || (!tenant.admin && name === tenant.name)) return readScope(tenant);
  if (!tenant.admin) {
    throw invalidRequest(
      "Only an admin key can read another tenant's objects: 'tenant' filters an admin key's reads; a tenant key reads its own.",
      'tenant',
      'invalid_value',
    );
  }
  const id = await keys.tenantIdByName(name);
  if (id === null) throw invalidRequest(`No tenant named '${echo(name)}'.`, 'tenant', 'invalid_value');
  return id;
}
