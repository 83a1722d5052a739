import type { TenantQuotaInfo, TenantQuotas } from '../tenants/tenant-quotas';
import { describeLimit, OverrideValue, parseOverride, QuotaName } from '../tenants/quotas';
import type { CliIO } from './io';
import { UsageError } from './io';
import { formatTable } from './table';

export interface TenantsArgs {
  tenant?: string;
  json?: boolean;
  'max-active-batches'?: string;
  'max-storage-bytes'?: string;
  'max-enqueued-tokens'?: string;
  upstreams?: string;
  positionals: string[];
}

const FLAGS: [keyof TenantsArgs & string, QuotaName][] = [
  ['max-active-batches', 'maxActiveBatches'],
  ['max-storage-bytes', 'maxStorageBytes'],
  ['max-enqueued-tokens', 'maxEnqueuedTokens'],
];

/** `barge tenants set|list`. Returns the exit code. */
export async function tenantsCommand(
  quotas: TenantQuotas,
  action: string,
  args: TenantsArgs,
  io: CliIO,
  configuredUpstreams: string[] = [],
  /** The upstreams each tenant has its own key for, by tenant id (`--json` lists them). */
  ownKeys: () => Promise<Map<string, string[]>> = async () => new Map(),
): Promise<number> {
  const print = async (list: TenantQuotaInfo[]) => {
    if (!args.json) return io.out(formatTable(COLUMNS, list.map(row)));
    const keys = await ownKeys();
    const withKeys = list.map((info) => ({ ...info, providerKeys: keys.get(info.tenantId) ?? [] }));
    io.out(JSON.stringify(withKeys, null, 2));
  };
  if (args.positionals.length > 0) {
    throw new UsageError(`tenants ${action} takes no argument "${args.positionals[0]}"`);
  }
  switch (action) {
    case 'set': {
      if (!args.tenant) throw new UsageError('tenants set needs --tenant NAME');
      const values: Partial<Record<QuotaName, OverrideValue>> = {};
      for (const [flag, name] of FLAGS) {
        const text = args[flag];
        if (typeof text !== 'string') continue;
        try {
          values[name] = parseOverride(flag, text);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const upstreams = args.upstreams === undefined ? undefined : parseUpstreams(args.upstreams);
      if (Object.keys(values).length === 0 && upstreams === undefined) {
        throw new UsageError(
          'tenants set needs at least one of --max-active-batches, --max-storage-bytes, --max-enqueued-tokens, --upstreams',
        );
      }
      for (const name of upstreams ?? []) {
        if (!configuredUpstreams.includes(name))
          io.err(`barge: note: no upstream "${name}" is configured (yet)`);
      }
      const info = await quotas.set(args.tenant, values, upstreams);
      if (!info) {
        io.err(`barge: no tenant "${args.tenant}" (tenants are created by \`barge keys create\`)`);
        return 1;
      }
      io.err(`Updated the quotas of tenant "${info.tenantName}".`);
      await print([info]);
      return 0;
    }
    case 'list': {
      const list = await quotas.list(args.tenant);
      if (!args.json && list.length === 0) {
        io.err(args.tenant ? `No tenant "${args.tenant}".` : 'No tenants yet.');
        return args.tenant ? 1 : 0;
      }
      await print(list);
      return 0;
    }
    default:
      throw new UsageError(action ? `unknown tenants command "${action}"` : 'tenants needs a command');
  }
}

const COLUMNS = ['TENANT', 'ACTIVE BATCHES', 'STORAGE BYTES', 'ENQUEUED TOKENS (PER MODEL)', 'UPSTREAMS'];

const UPSTREAM_NAME = /^[a-zA-Z0-9_.-]+$/;

/** `--upstreams a,b`: the upstreams a tenant may pin; `all` (null): every configured one; `none`: none. */
function parseUpstreams(text: string): string[] | null {
  if (text === 'all') return null;
  if (text === 'none') return [];
  const names = [...new Set(text.split(',').map((n) => n.trim()))];
  const bad = names.find((n) => !UPSTREAM_NAME.test(n));
  if (bad !== undefined) {
    throw new UsageError(
      `--upstreams wants "all", "none" or upstream names separated by commas (letters, digits, "_", "." and "-"), not "${text}"`,
    );
  }
  return names;
}

/** `use / limit`, the limit marked when it is the tenant's own rather than the configured default. */
function cell(use: string, info: TenantQuotaInfo, name: QuotaName): string {
  const own = info.overrides[name] !== null ? ' (set)' : '';
  return `${use} / ${describeLimit(info.limits[name])}${own}`;
}

function row(info: TenantQuotaInfo): string[] {
  const held = Object.entries(info.use.enqueuedTokens);
  const tokens = held.length === 0 ? '0' : held.map(([model, n]) => `${model}=${n}`).join(', ');
  return [
    info.tenantName,
    cell(String(info.use.activeBatches), info, 'maxActiveBatches'),
    cell(String(info.use.storageBytes), info, 'maxStorageBytes'),
    cell(tokens, info, 'maxEnqueuedTokens'),
    info.allowedUpstreams === null ? 'all' : info.allowedUpstreams.join(',') || 'none',
  ];
}
