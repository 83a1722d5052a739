import { ApiKeyError, ApiKeyInfo, ApiKeyStore } from '../auth/api-key-store';
import type { CliIO } from './io';
import { UsageError } from './io';
import { formatTable } from './table';

/** `barge keys create|list|revoke`. Returns the exit code. */
export async function keysCommand(
  keys: ApiKeyStore,
  action: string,
  args: { tenant?: string; name?: string; json?: boolean; admin?: boolean; positionals: string[] },
  io: CliIO,
): Promise<number> {
  switch (action) {
    case 'create': {
      if (!args.tenant) throw new UsageError('keys create needs --tenant NAME');
      noPositionals(args.positionals, 'keys create');
      let created;
      try {
        created = await keys.create(args.tenant, args.name, args.admin ? 'admin' : 'tenant');
      } catch (err) {
        if (err instanceof ApiKeyError) throw new UsageError(err.message);
        throw err;
      }
      const { info } = created;
      io.err(
        `Created ${args.admin ? 'admin key ' : ''}${info.id} (${info.prefix}...) for ${created.tenantCreated ? 'new ' : ''}tenant "${info.tenantName}".`,
      );
      io.err('This is the only time the key is shown; store it now:');
      // The key alone on stdout's last line: `KEY=$(barge keys create --tenant t)` just works.
      io.out(created.key);
      return 0;
    }
    case 'list': {
      noPositionals(args.positionals, 'keys list');
      const list = await keys.list(args.tenant);
      if (args.json) io.out(JSON.stringify(list, null, 2));
      else if (list.length === 0)
        io.err(args.tenant ? `No keys for tenant "${args.tenant}".` : 'No keys yet.');
      else io.out(formatTable(KEY_COLUMNS, list.map(keyRow)));
      return 0;
    }
    case 'revoke': {
      if (args.positionals.length !== 1) throw new UsageError('keys revoke needs exactly one KEY_ID');
      const id = args.positionals[0];
      const now = new Date();
      const key = await keys.revoke(id, now);
      if (!key) {
        io.err(`barge: no key with id ${id} (see \`barge keys list\`)`);
        return 1;
      }
      if (key.revokedAt && key.revokedAt.getTime() !== now.getTime()) {
        io.out(`${key.id} was already revoked at ${iso(key.revokedAt)}.`);
      } else {
        io.out(`Revoked ${key.id} (${key.prefix}...) of tenant "${key.tenantName}".`);
      }
      return 0;
    }
    default:
      throw new UsageError(action ? `unknown keys command "${action}"` : 'keys needs a command');
  }
}

const KEY_COLUMNS = ['ID', 'TENANT', 'PREFIX', 'NAME', 'CREATED', 'LAST USED', 'REVOKED', 'ROLE'];

function keyRow(key: ApiKeyInfo): string[] {
  return [
    key.id,
    key.tenantName,
    `${key.prefix}...`,
    key.name ?? '-',
    iso(key.createdAt),
    key.lastUsedAt ? iso(key.lastUsedAt) : 'never',
    key.revokedAt ? iso(key.revokedAt) : '-',
    key.role,
  ];
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no argument "${positionals[0]}"`);
}
