import { parseArgs } from 'node:util';
import { API_OPTIONS_USAGE, ApiError } from './api-client';
import { BATCHES_USAGE, batchesCommand } from './batches/command';
import { CliIO, UsageError } from './io';
import { parseOperatorRequest, type OperatorRequest } from './operator-requests';
import { PROVIDER_KEY_USAGE } from './provider-keys.command';
import { webhooksApiCommand, WEBHOOKS_USAGE } from './webhooks.command';

export const USAGE = `Usage: barge <command>

Operators (on a machine with the server's configuration):
  barge keys create --tenant NAME [--name LABEL] [--admin]
                                                   create an API key (and the tenant if new);
                                                   the key is printed once, as the last line;
                                                   --admin: an operator's key, reading every
                                                   tenant's batches and usage, nothing else
  barge keys list [--tenant NAME] [--json]         list keys (never their secrets)
  barge keys revoke KEY_ID                         revoke a key; its next request gets 401

  barge tenants set --tenant NAME [--max-active-batches N] [--max-storage-bytes N]
                    [--max-enqueued-tokens N] [--upstreams NAME,...|all|none]
                                                   set a tenant's quotas (N: a number, "unlimited"
                                                   or "default", the configured one) and the
                                                   upstreams it may pin (x-barge-provider)
  barge tenants list [--tenant NAME] [--json]      tenants with their quotas and current use
${PROVIDER_KEY_USAGE}

  barge usage [--tenant NAME] [--since DATE] [--until DATE] [--group-by model,day]
              [--format table|json|csv]            usage per tenant (requests by outcome, tokens)
                                                   of the batches created in the period (UTC)

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
  admin: { type: 'boolean' },
  'max-active-batches': { type: 'string' },
  'max-storage-bytes': { type: 'string' },
  'max-enqueued-tokens': { type: 'string' },
  upstreams: { type: 'string' },
  upstream: { type: 'string' },
  'key-env': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'group-by': { type: 'string' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What an operator's command gets: the parsed options, and the positionals after its action. */
export type OperatorArgs = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>
>['values'] & { positionals: string[] };

/** The options each command takes (parseArgs knows them all; each command refuses the others'). */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  keys: ['tenant', 'name', 'json', 'admin'],
  tenants: [
    'tenant',
    'json',
    'max-active-batches',
    'max-storage-bytes',
    'max-enqueued-tokens',
    'upstreams',
    'upstream',
    'key-env',
  ],
  usage: ['tenant', 'since', 'until', 'group-by', 'format'],
};

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
  const [group, ...rest] = parsed.positionals;
  // `barge usage` has no action: its positionals start right after it.
  const action = group === 'usage' ? '' : rest[0];
  const positionals = group === 'usage' ? rest : rest.slice(1);
  if (parsed.values.help || group === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (group === undefined) return usageError(io, 'missing command');
  const allowed = COMMAND_OPTIONS[group];
  if (!allowed) return usageError(io, `unknown command "${group}"`);
  const foreign = Object.keys(parsed.values).find((name) => name !== 'help' && !allowed.includes(name));
  if (foreign) return usageError(io, `Unknown option '--${foreign}' for ${group}`);

  // Mistakes in the arguments are answered first, without the configuration or Postgres.
  let request: OperatorRequest;
  try {
    request = parseOperatorRequest(group, action ?? '', { ...parsed.values, positionals });
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message);
    throw err;
  }
  // The operator's commands need Postgres and the server's configuration; their modules
  // (TypeORM, pg, zod) take most of a second to load, which the API commands above and the
  // usage errors skip.
  const { runOperatorCommand } = await import('./operator');
  try {
    return await runOperatorCommand(request, io, env);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message);
    throw err;
  }
}

function usageError(io: CliIO, message: string): number {
  io.err(`barge: ${message}\n\n${USAGE}`);
  return 2;
}
