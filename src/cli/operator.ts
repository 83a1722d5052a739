import { ApiKeyStore } from '../auth/api-key-store';
import { SecretBox } from '../common/secret-box';
import { ConfigError, loadConfig } from '../config/config';
import { connectDatabase } from '../database/data-source';
import { ProviderKeyStore, ProviderKeysNotConfigured } from '../tenants/provider-keys';
import { TenantQuotas } from '../tenants/tenant-quotas';
import { UsageStore } from '../tenants/usage';
import { PriceBook } from '../upstreams/prices';
import { providerNames } from '../upstreams/provider-names';
import type { OperatorArgs } from './cli';
import { CliIO, UsageError } from './io';
import { keysCommand } from './keys.command';
import { providerKeyCommand } from './provider-keys.command';
import { tenantsCommand } from './tenants.command';
import { usageCommand } from './usage.command';

/**
 * The operator's commands (keys, tenants, usage): against Postgres, with the server's own
 * configuration. Loaded by cli.ts only when one of them runs; a UsageError goes back to it.
 */
export async function runOperatorCommand(
  group: string,
  action: string,
  args: OperatorArgs,
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

  let db;
  try {
    db = await connectDatabase(config, 'barge-cli');
  } catch (err) {
    io.err(`barge: cannot connect to Postgres: ${(err as Error).message}`);
    return 1;
  }
  try {
    switch (group) {
      case 'usage': {
        const keys = new ApiKeyStore(db);
        return await usageCommand(
          new UsageStore(db, new PriceBook(config.pricing)),
          (name) => keys.tenantIdByName(name),
          args,
          io,
        );
      }
      case 'tenants': {
        const keys = new ProviderKeyStore(db, SecretBox.fromConfig(config.secrets));
        if (action === 'set-key' || action === 'delete-key') {
          return await providerKeyCommand(keys, action, args, io, env, providerNames(config));
        }
        return await tenantsCommand(
          new TenantQuotas(db, config.quotas),
          action,
          args,
          io,
          providerNames(config),
          () => keys.registeredUpstreams(),
        );
      }
      default:
        return await keysCommand(new ApiKeyStore(db), action, args, io);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err; // cli.ts answers it with the usage text
    io.err(`barge: ${(err as Error).message}`);
    return err instanceof ProviderKeysNotConfigured ? 2 : 1;
  } finally {
    await db.destroy();
  }
}
