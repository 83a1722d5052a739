import { parseArgs } from 'node:util';
import { ApiKeyStore } from '../auth/api-key-store';
import { ConfigError, loadConfig } from '../config/config';
import { connectDatabase } from '../database/data-source';
import { API_OPTIONS_USAGE, ApiError } from './api-client';
import { BATCHES_USAGE, batchesCommand } from './batches/command';
import { CliIO, UsageError } from './io';
import { keysCommand } from './keys.command';
import { webhooksApiCommand, WEBHOOKS_USAGE } from './webhooks.command';

export const USAGE = `Usage: barge <command>

Operators (on a machine with the server's configuration):
  barge keys create --tenant NAME [--name LABEL]   create an API key (and the tenant if new);
                                                   the key is printed once, as the last line
  barge keys list [--tenant NAME] [--json]         list keys (never their secrets)
  barge keys revoke KEY_ID                         revoke a key; its next request gets 401

  Configuration comes from BARGE_CONFIG and BARGE_* variables, as for the API (at least
  BARGE_POSTGRES_URL, BARGE_STORAGE_*).

Users (against any OpenAI-compatible Batch API, over HTTP):
${BATCHES_USAGE}
${WEBHOOKS_USAGE}

${API_OPTIONS_USAGE}
  Progress is one line redrawn in place on a terminal, timestamped lines otherwise.

Exit codes: 0 ok, 1 failure (or a watched batch that did not complete), 2 bad usage or configuration.`;

/**
 * Command groups that call a Batch API over HTTP, each in its own file, by name: they need no
 * database, only a base URL and a key.
 */
type ApiCommand = (argv: string[], io: CliIO, env: Record<string, string | undefined>) => Promise<number>;
const API_COMMANDS: Record<string, ApiCommand> = { batches: batchesCommand, webhooks: webhooksApiCommand };

const OPTIONS = {
  tenant: { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs one CLI invocation and returns its exit code. */
export async function runCli(
  argv: string[],
  io: CliIO,
  env: Record<string, string | undefined> = {},
): Promise<number> {
  const apiCommand =
    argv[0] !== undefined && Object.hasOwn(API_COMMANDS, argv[0]) ? API_COMMANDS[argv[0]] : null;
  if (apiCommand) {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.out(USAGE);
      return 0;
    }
    try {
      return await apiCommand(argv.slice(1), io, env);
    } catch (err) {
      if (err instanceof UsageError) return usageError(io, err.message);
      if (err instanceof ApiError) {
        io.err(
          `barge: ${err.message}${err.status ? ` (HTTP ${err.status}${err.code ? `, ${err.code}` : ''})` : ''}`,
        );
        return 1;
      }
      throw err;
    }
  }
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
