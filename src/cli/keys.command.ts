import { ApiKeyError, ApiKeyInfo, ApiKeyStore } from '../auth/api-key-store';
import type { CliIO } from './io';
import { UsageError } from './io';
import type { RequestOf } from './operator-requests';
import { formatTable } from './table';

/** `barge keys create|list|revoke`, its arguments checked (operator-requests.ts). Returns the exit code. */
export async function keysCommand(
  keys: ApiKeyStore,
  request: RequestOf<'keys create' | 'keys list' | 'keys revoke'>,
  io: CliIO,
): Promise<number> {
  switch (request.command) {
    case 'keys create': {
      const role = request.admin ? 'admin' : 'tenant';
      let created;
      try {
        created = await keys.create(request.tenant, request.name, role);
      } catch (err) {
        if (err instanceof ApiKeyError) throw new UsageError(err.message);
        throw err;
      }
      const { info } = created;
      io.err(
        `Created ${request.admin ? 'admin key ' : ''}${info.id} (${info.prefix}...) for ${created.tenantCreated ? 'new ' : ''}tenant "${info.tenantName}".`,
      );
      io.err('This is the only time the key is shown; store it now:');
      // The key alone on stdout's last line: `KEY=$(barge keys create --tenant t)` just works.
      io.out(created.key);
      return 0;
    }
    case 'keys list': {
      const list = await keys.list(request.tenant);
      if (request.json) io.out(JSON.stringify(list, null, 2));
      else if (list.length === 0)
        io.err(request.tenant ? `No keys for tenant "${request.tenant}".` : 'No keys yet.');
      else io.out(formatTable(KEY_COLUMNS, list.map(keyRow)));
      return 0;
    }
    case 'keys revoke': {
      const id = request.keyId;
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
