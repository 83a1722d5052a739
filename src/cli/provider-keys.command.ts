import { ProviderKeyStore, ProviderKeysNotConfigured, providerKeyProblem } from '../tenants/provider-keys';
import type { CliIO } from './io';
import { UsageError } from './io';
import type { RequestOf } from './operator-requests';

export const PROVIDER_KEY_USAGE = `  barge tenants set-key --tenant NAME --upstream UPSTREAM [--key-env VAR]
                                                   register the tenant's own key for an upstream,
                                                   read from the variable VAR, else from stdin
                                                   (never from an argument); its batches'
                                                   requests to that upstream then carry it
                                                   instead of the configured key
  barge tenants delete-key --tenant NAME --upstream UPSTREAM
                                                   back to the configured key`;

/**
 * `barge tenants set-key`, the part before Postgres: the upstream is configured, keys can be
 * stored here (an encryption key is configured), and the key, read from `--key-env` or stdin
 * (never from argv, which every user of the machine can read in the process list), is usable.
 * The request with its key, or the exit code when the key is not usable.
 */
export async function keyToRegister(
  request: RequestOf<'tenants set-key'>,
  io: CliIO,
  env: Record<string, string | undefined>,
  configuredUpstreams: string[],
  canStore: boolean,
): Promise<KeyedSetKey | { exit: number }> {
  const { upstream } = request;
  if (!configuredUpstreams.includes(upstream)) {
    throw new UsageError(
      `no upstream "${upstream}" is configured (configured: ${configuredUpstreams.join(', ') || 'none'})`,
    );
  }
  if (!canStore) throw new ProviderKeysNotConfigured();
  const key = (await readKey(request.keyEnv, env, io, upstream)).trim();
  const problem = providerKeyProblem(key);
  if (problem) {
    io.err(`barge: that is not a usable key: ${problem}`);
    return { exit: 1 };
  }
  return { ...request, key };
}

/** `barge tenants set-key` with the key it registers, read before connecting (keyToRegister). */
export type KeyedSetKey = RequestOf<'tenants set-key'> & { key: string };

/** `barge tenants set-key|delete-key` against the store. */
export async function providerKeyCommand(
  store: ProviderKeyStore,
  request: KeyedSetKey | RequestOf<'tenants delete-key'>,
  io: CliIO,
): Promise<number> {
  const { tenant, upstream } = request;
  if (request.command === 'tenants delete-key') {
    const deleted = await store.remove(tenant, upstream);
    if (deleted === null) return noTenant(io, tenant);
    if (!deleted) {
      io.err(`barge: tenant "${tenant}" has no key of its own for upstream "${upstream}"`);
      return 1;
    }
    io.err(
      `Deleted tenant "${tenant}"'s key for upstream "${upstream}": its batches use the configured key.`,
    );
    return 0;
  }
  const done = await store.register(tenant, upstream, request.key);
  if (!done) return noTenant(io, tenant);
  io.err(
    `${done.replaced ? 'Replaced' : 'Registered'} tenant "${tenant}"'s key for upstream "${upstream}" ` +
      '(stored encrypted; it is never shown again).',
  );
  return 0;
}

async function readKey(
  variable: string | undefined,
  env: Record<string, string | undefined>,
  io: CliIO,
  upstream: string,
): Promise<string> {
  if (variable !== undefined) {
    const value = env[variable];
    if (value === undefined || value.trim() === '') {
      throw new UsageError(`--key-env ${variable}: the variable is not set, or empty`);
    }
    return value;
  }
  if (!io.readStdin) throw new UsageError('no key: give --key-env VAR, or the key on stdin');
  return io.readStdin(`Key for upstream "${upstream}": `);
}

function noTenant(io: CliIO, tenant: string): number {
  io.err(`barge: no tenant "${tenant}" (tenants are created by \`barge keys create\`)`);
  return 1;
}
