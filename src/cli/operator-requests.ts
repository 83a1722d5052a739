import { parseOverride, type OverrideValue, type QuotaName } from '../tenants/quotas';
import { invalidUsageGroupMessage, readUsageGroups, type UsageGroup } from '../tenants/usage-groups';
import type { OperatorArgs } from './cli';
import { UsageError } from './io';

/**
 * An operator's command line, checked: what `barge keys|tenants|usage` is asked to do, read
 * from the parsed options before anything else happens. Every mistake in the arguments alone
 * is a UsageError here, so it is answered without the server's configuration, without
 * Postgres and without loading the modules that talk to it (operator.ts). What needs the
 * configuration (is that upstream configured?) or the database (does that tenant exist?) is
 * checked by the command itself.
 */
export type OperatorRequest =
  | { command: 'keys create'; tenant: string; name?: string; admin: boolean }
  | { command: 'keys list'; tenant?: string; json: boolean }
  | { command: 'keys revoke'; keyId: string }
  | {
      command: 'tenants set';
      tenant: string;
      quotas: Partial<Record<QuotaName, OverrideValue>>;
      /** Upstreams the tenant may pin: names, null for every configured one; unchanged if absent. */
      upstreams?: string[] | null;
      json: boolean;
    }
  | { command: 'tenants list'; tenant?: string; json: boolean }
  | { command: 'tenants set-key'; tenant: string; upstream: string; keyEnv?: string }
  | { command: 'tenants delete-key'; tenant: string; upstream: string }
  | {
      command: 'usage';
      tenant?: string;
      since?: Date;
      until?: Date;
      groupBy: UsageGroup[];
      format: UsageFormat;
    };

export type RequestOf<C extends OperatorRequest['command']> = Extract<OperatorRequest, { command: C }>;

const USAGE_FORMATS = ['table', 'json', 'csv'] as const;
export type UsageFormat = (typeof USAGE_FORMATS)[number];

/** `group` and `action` as cli.ts split them (`usage` has no action); throws UsageError. */
export function parseOperatorRequest(group: string, action: string, args: OperatorArgs): OperatorRequest {
  switch (group) {
    case 'keys':
      return keysRequest(action, args);
    case 'tenants':
      return tenantsRequest(action, args);
    case 'usage':
      return usageRequest(args);
    default:
      throw new UsageError(`unknown command "${group}"`);
  }
}

function keysRequest(action: string, args: OperatorArgs): OperatorRequest {
  switch (action) {
    case 'create':
      if (!args.tenant) throw new UsageError('keys create needs --tenant NAME');
      noPositionals(args, 'keys create');
      return { command: 'keys create', tenant: args.tenant, name: args.name, admin: args.admin ?? false };
    case 'list':
      noPositionals(args, 'keys list');
      return { command: 'keys list', tenant: args.tenant, json: args.json ?? false };
    case 'revoke':
      if (args.positionals.length !== 1) throw new UsageError('keys revoke needs exactly one KEY_ID');
      return { command: 'keys revoke', keyId: args.positionals[0] };
    default:
      throw new UsageError(action ? `unknown keys command "${action}"` : 'keys needs a command');
  }
}

const QUOTA_FLAGS: ['max-active-batches' | 'max-storage-bytes' | 'max-enqueued-tokens', QuotaName][] = [
  ['max-active-batches', 'maxActiveBatches'],
  ['max-storage-bytes', 'maxStorageBytes'],
  ['max-enqueued-tokens', 'maxEnqueuedTokens'],
];

function tenantsRequest(action: string, args: OperatorArgs): OperatorRequest {
  switch (action) {
    case 'set': {
      noPositionals(args, 'tenants set');
      if (!args.tenant) throw new UsageError('tenants set needs --tenant NAME');
      const quotas: Partial<Record<QuotaName, OverrideValue>> = {};
      for (const [flag, name] of QUOTA_FLAGS) {
        const text = args[flag];
        if (text === undefined) continue;
        try {
          quotas[name] = parseOverride(flag, text);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const upstreams = args.upstreams === undefined ? undefined : parseUpstreams(args.upstreams);
      if (Object.keys(quotas).length === 0 && upstreams === undefined) {
        throw new UsageError(
          'tenants set needs at least one of --max-active-batches, --max-storage-bytes, --max-enqueued-tokens, --upstreams',
        );
      }
      return { command: 'tenants set', tenant: args.tenant, quotas, upstreams, json: args.json ?? false };
    }
    case 'list':
      noPositionals(args, 'tenants list');
      return { command: 'tenants list', tenant: args.tenant, json: args.json ?? false };
    case 'set-key':
    case 'delete-key': {
      if (args.positionals.length > 0) {
        // Most likely the key itself: say where it goes instead, without repeating it.
        throw new UsageError(
          `tenants ${action} takes no arguments (a key is read from --key-env VAR or stdin, never from the command line)`,
        );
      }
      if (!args.tenant) throw new UsageError(`tenants ${action} needs --tenant NAME`);
      if (!args.upstream) throw new UsageError(`tenants ${action} needs --upstream NAME`);
      const { tenant, upstream } = args;
      if (action === 'set-key')
        return { command: 'tenants set-key', tenant, upstream, keyEnv: args['key-env'] };
      if (args['key-env'] !== undefined) throw new UsageError('tenants delete-key takes no --key-env');
      return { command: 'tenants delete-key', tenant, upstream };
    }
    default:
      throw new UsageError(action ? `unknown tenants command "${action}"` : 'tenants needs a command');
  }
}

const UPSTREAM_NAME = /^[a-zA-Z0-9_.-]+$/;

/** `--upstreams a,b`: the upstreams a tenant may pin; `all` (null): every configured one; `none`: none. */
function parseUpstreams(text: string): string[] | null {
  if (text === 'all') return null;
  if (text === 'none') return [];
  const names = [...new Set(text.split(',').map((n) => n.trim()))];
  if (names.some((n) => !UPSTREAM_NAME.test(n))) {
    throw new UsageError(
      `--upstreams wants "all", "none" or upstream names separated by commas (letters, digits, "_", "." and "-"), not "${text}"`,
    );
  }
  return names;
}

function usageRequest(args: OperatorArgs): OperatorRequest {
  noPositionals(args, 'usage');
  const format = args.format ?? 'table';
  if (!(USAGE_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format wants one of ${USAGE_FORMATS.join(', ')}, not "${format}"`);
  }
  const groups = readUsageGroups(args['group-by']);
  if ('invalid' in groups) {
    throw new UsageError(invalidUsageGroupMessage('--group-by', groups.invalid));
  }
  return {
    command: 'usage',
    tenant: args.tenant,
    since: args.since === undefined ? undefined : parseCliDate('since', args.since),
    until: args.until === undefined ? undefined : parseCliDate('until', args.until),
    groupBy: groups.groups,
    format: format as UsageFormat,
  };
}

/** A date or date-time as the operator writes it (`2026-01-31`, `2026-01-31T12:00:00Z`); days are UTC. */
export function parseCliDate(flag: string, text: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const date = new Date(iso);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--${flag} wants a date (YYYY-MM-DD) or an ISO date-time, not "${text}"`);
  }
  return date;
}

function noPositionals(args: OperatorArgs, command: string): void {
  if (args.positionals.length > 0) {
    throw new UsageError(`${command} takes no argument "${args.positionals[0]}"`);
  }
}
