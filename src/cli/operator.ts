import type { DataSource } from 'typeorm';
import { ApiKeyStore } from '../auth/api-key-store';
import { SecretBox } from '../common/secret-box';
import { ConfigError, loadConfig } from '../config/config';
import { connectDatabase } from '../database/data-source';
import { ProviderKeyStore, ProviderKeysNotConfigured } from '../tenants/provider-keys';
import { TenantQuotas } from '../tenants/tenant-quotas';
import { UsageStore } from '../tenants/usage';
import { PriceBook } from '../upstreams/prices';
import { providerNames } from '../upstreams/provider-names';
import { CliIO, UsageError } from './io';
import { keysCommand } from './keys.command';
import type { OperatorRequest } from './operator-requests';
import { keyToRegister, providerKeyCommand, type KeyedSetKey } from './provider-keys.command';
import { tenantsCommand } from './tenants.command';
import { usageCommand } from './usage.command';

/**
 * The operator's commands (keys, tenants, usage): against Postgres, with the server's own
 * configuration. Loaded by cli.ts only when one of them runs, with its arguments already
 * checked (operator-requests.ts); what needs only the configuration is checked before
 * connecting. A UsageError goes back to cli.ts.
 */
export async function runOperatorCommand(
  request: OperatorRequest,
  io: CliIO,
  env: Record<string, string | undefined>,
): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`barge: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const box = SecretBox.fromConfig(config.secrets);

  let db: DataSource | undefined;
  try {
    // set-key reads and checks the key before Postgres: a wrong upstream or an unusable key
    // is answered whether or not the database is up.
    let ready: Exclude<OperatorRequest, { command: 'tenants set-key' }> | KeyedSetKey;
    if (request.command === 'tenants set-key') {
      const read = await keyToRegister(request, io, env, providerNames(config), box !== null);
      if ('exit' in read) return read.exit;
      ready = read;
    } else {
      ready = request;
    }
    try {
      db = await connectDatabase(config, 'barge-cli');
    } catch (err) {
      io.err(`barge: cannot connect to Postgres: ${(err as Error).message}`);
      return 1;
    }
    switch (ready.command) {
      case 'usage': {
        const keys = new ApiKeyStore(db);
        return await usageCommand(
          new UsageStore(db, new PriceBook(config.pricing)),
          (name) => keys.tenantIdByName(name),
          ready,
          io,
        );
      }
      case 'tenants set-key':
      case 'tenants delete-key':
        return await providerKeyCommand(new ProviderKeyStore(db, box), ready, io);
      case 'tenants set':
      case 'tenants list': {
        const keys = new ProviderKeyStore(db, box);
        return await tenantsCommand(
          new TenantQuotas(db, config.quotas),
          ready,
          io,
          providerNames(config),
          () => keys.registeredUpstreams(),
        );
      }
      case 'keys create':
      case 'keys list':
      case 'keys revoke':
        return await keysCommand(new ApiKeyStore(db), ready, io);
      default: {
        const none: never = ready; // every command is handled above
        throw new Error(`no operator command ${JSON.stringify(none)}`);
      }
    }
  } catch (err) {
    if (err instanceof UsageError) throw err; // cli.ts answers it with the usage text
    io.err(`barge: ${(err as Error).message}`);
    return err instanceof ProviderKeysNotConfigured ? 2 : 1;
  } finally {
    await db?.destroy();
  }
}
