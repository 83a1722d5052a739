import { parseArgs } from 'node:util';
import { ApiKeyStore } from '../auth/api-key-store';
import { ConfigError, loadConfig } from '../config/config';
import { connectDatabase } from '../database/data-source';
import { CliIO, UsageError } from './io';
import { keysCommand } from './keys.command';
import { ApiError, apiTarget } from './api-client';
import { batchesCommand, webhooksCommand } from './webhooks.command';

export const USAGE = `Usage: barge <command>

  barge keys create --tenant NAME [--name LABEL]   create an API key (and the tenant if new);
                                                   the key is printed once, as the last line
  barge keys list [--tenant NAME] [--json]         list keys (never their secrets)
  barge keys revoke KEY_ID                         revoke a key; its next request gets 401

  barge webhooks create --url URL [--events batch.completed,...] [--name LABEL] [--payload thin|full]
                                                   add a receiver; its signing secret is printed
                                                   once, as the last line (default: all 4 events)
  barge webhooks list [--json]                     the tenant's endpoints (secrets as hints only)
  barge webhooks delete WEBHOOK_ID                 remove an endpoint
  barge webhooks rotate WEBHOOK_ID [--keep-previous]
                                                   a new secret (the old one valid 24 h more)
  barge webhooks test WEBHOOK_ID [--event TYPE]    send a test event; exit 1 if it failed
  barge batches retry BATCH_ID [--include failed,expired,cancelled] [--window 24h]
                                                   a new batch of what failed; prints its id

keys reads BARGE_CONFIG and BARGE_* variables, as the API does (at least BARGE_POSTGRES_URL,
BARGE_STORAGE_*). webhooks and batches call the API as a tenant: --api-key (or BARGE_API_KEY)
and --base-url (or BARGE_API_URL, default http://127.0.0.1:8000).
Exit codes: 0 ok, 1 failure, 2 bad usage or configuration.`;

const OPTIONS = {
  tenant: { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  events: { type: 'string' },
  payload: { type: 'string' },
  'keep-previous': { type: 'boolean' },
  event: { type: 'string' },
  include: { type: 'string' },
  window: { type: 'string' },
  'api-key': { type: 'string' },
  'base-url': { type: 'string' },
} as const;

/** Runs one CLI invocation and returns its exit code. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError(io, (err as Error).message);
  }
  const [group, action, ...positionals] = parsed.positionals;
  if (parsed.values.help || group === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (group === undefined) return usageError(io, 'missing command');
  if (group === 'webhooks' || group === 'batches') {
    try {
      const api = apiTarget(parsed.values);
      const args = { ...parsed.values, positionals };
      return group === 'webhooks'
        ? await webhooksCommand(api, action ?? '', args, io)
        : await batchesCommand(api, action ?? '', args, io);
    } catch (err) {
      if (err instanceof UsageError) return usageError(io, err.message);
      if (err instanceof ApiError) {
        io.err(`barge: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }
  if (group !== 'keys') return usageError(io, `unknown command "${group}"`);

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
    return await keysCommand(new ApiKeyStore(db), action ?? '', { ...parsed.values, positionals }, io);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message);
    io.err(`barge: ${(err as Error).message}`);
    return 1;
  } finally {
    await db.destroy();
  }
}

function usageError(io: CliIO, message: string): number {
  io.err(`barge: ${message}\n\n${USAGE}`);
  return 2;
}
