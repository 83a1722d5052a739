import type { TenantQuotaInfo, TenantQuotas } from '../tenants/tenant-quotas';
import { describeLimit, type QuotaName } from '../tenants/quotas';
import type { CliIO } from './io';
import type { RequestOf } from './operator-requests';
import { formatTable } from './table';

/** `barge tenants set|list`, its arguments checked (operator-requests.ts). Returns the exit code. */
export async function tenantsCommand(
  quotas: TenantQuotas,
  request: RequestOf<'tenants set' | 'tenants list'>,
  io: CliIO,
  configuredUpstreams: string[] = [],
  /** The upstreams each tenant has its own key for, by tenant id (`--json` lists them). */
  ownKeys: () => Promise<Map<string, string[]>> = async () => new Map(),
): Promise<number> {
  const print = async (list: TenantQuotaInfo[]) => {
    if (!request.json) return io.out(formatTable(COLUMNS, list.map(row)));
    const keys = await ownKeys();
    const withKeys = list.map((info) => ({ ...info, providerKeys: keys.get(info.tenantId) ?? [] }));
    io.out(JSON.stringify(withKeys, null, 2));
  };
  switch (request.command) {
    case 'tenants set': {
      for (const name of request.upstreams ?? []) {
        if (!configuredUpstreams.includes(name))
          io.err(`barge: note: no upstream "${name}" is configured (yet)`);
      }
      const info = await quotas.set(request.tenant, request.quotas, request.upstreams);
      if (!info) {
        io.err(`barge: no tenant "${request.tenant}" (tenants are created by \`barge keys create\`)`);
        return 1;
      }
      io.err(`Updated the quotas of tenant "${info.tenantName}".`);
      await print([info]);
      return 0;
    }
    case 'tenants list': {
      const list = await quotas.list(request.tenant);
      if (!request.json && list.length === 0) {
        io.err(request.tenant ? `No tenant "${request.tenant}".` : 'No tenants yet.');
        return request.tenant ? 1 : 0;
      }
      await print(list);
      return 0;
    }
  }
}

const COLUMNS = ['TENANT', 'ACTIVE BATCHES', 'STORAGE BYTES', 'ENQUEUED TOKENS (PER MODEL)', 'UPSTREAMS'];

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
