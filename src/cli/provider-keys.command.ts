import { ProviderKeyStore, ProviderKeysNotConfigured, providerKeyProblem } from '../tenants/provider-keys';
import type { CliIO } from './io';
import { UsageError } from './io';

export interface ProviderKeyArgs {
  tenant?: string;
  upstream?: string;
  'key-env'?: string;
  positionals: string[];
}

export const PROVIDER_KEY_USAGE = `  barge tenants set-key --tenant NAME --upstream UPSTREAM [--key-env VAR]
                                                   register the tenant's own key for an upstream,
                                                   read from the variable VAR, else from stdin
                                                   (never from an argument); its batches'
                                                   requests to that upstream then carry it
                                                   instead of the configured key
  barge tenants delete-key --tenant NAME --upstream UPSTREAM
                                                   back to the configured key`;

/** `barge tenants set-key|delete-key`. Returns the exit code. */
export async function providerKeyCommand(
  store: ProviderKeyStore,
  action: 'set-key' | 'delete-key',
  args: ProviderKeyArgs,
  io: CliIO,
  env: Record<string, string | undefined>,
  configuredUpstreams: string[],
): Promise<number> {
  if (args.positionals.length > 0) {
    // Most likely the key itself: say where it goes instead, without repeating it.
    throw new UsageError(
      `tenants ${action} takes no arguments (a key is read from --key-env VAR or stdin, never from the command line)`,
    );
  }
  if (!args.tenant) throw new UsageError(`tenants ${action} needs --tenant NAME`);
  if (!args.upstream) throw new UsageError(`tenants ${action} needs --upstream NAME`);
  const { tenant, upstream } = args;
  if (action === 'delete-key') {
    if (args['key-env'] !== undefined) throw new UsageError('tenants delete-key takes no --key-env');
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

  if (!configuredUpstreams.includes(upstream)) {
    throw new UsageError(
      `no upstream "${upstream}" is configured (configured: ${configuredUpstreams.join(', ') || 'none'})`,
    );
  }
  if (!store.configured) throw new ProviderKeysNotConfigured();
  // Never from argv, which every user of the machine can read in the process list.
  const key = (await readKey(args['key-env'], env, io, upstream)).trim();
  const problem = providerKeyProblem(key);
  if (problem) {
    io.err(`barge: that is not a usable key: ${problem}`);
    return 1;
  }
  const done = await store.register(tenant, upstream, key);
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
