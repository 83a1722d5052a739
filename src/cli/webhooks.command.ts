import { parseArgs } from 'node:util';
import { API_OPTIONS, ApiClient, resolveTarget } from './api-client';
import type { CliIO } from './io';
import { UsageError } from './io';
import { formatTable } from './table';

export interface WebhookArgs {
  url?: string;
  events?: string;
  name?: string;
  payload?: string;
  'keep-previous'?: boolean;
  event?: string;
  json?: boolean;
  positionals: string[];
}

interface Endpoint {
  id: string;
  url: string;
  name: string | null;
  event_types: string[];
  status: string;
  disabled_reason: string | null;
  secret?: string;
  secret_hint: string;
  created_at: number;
}

const ALL_EVENTS = 'batch.completed,batch.failed,batch.expired,batch.cancelled';

function oneId(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new UsageError(`webhooks ${command} needs exactly one WEBHOOK_ID`);
  return positionals[0];
}

/** `barge webhooks create|list|delete|rotate|test`, through the API. Returns the exit code. */
export async function webhooksCommand(
  client: ApiClient,
  action: string,
  args: WebhookArgs,
  io: CliIO,
): Promise<number> {
  switch (action) {
    case 'create': {
      if (!args.url) throw new UsageError('webhooks create needs --url URL');
      if (args.positionals.length > 0)
        throw new UsageError(`webhooks create takes no argument "${args.positionals[0]}"`);
      const created = await client.json<Endpoint>('POST', '/webhook_endpoints', {
        url: args.url,
        event_types: (args.events ?? ALL_EVENTS).split(',').map((e) => e.trim()),
        ...(args.name !== undefined && { name: args.name }),
        ...(args.payload !== undefined && { payload: args.payload }),
      });
      if (args.json) {
        io.out(JSON.stringify(created, null, 2));
        return 0;
      }
      io.err(`Created ${created.id} for ${created.url} (${created.event_types.join(', ')}).`);
      io.err('This is the only time the signing secret is shown; store it now:');
      // The secret alone on stdout's last line: `SECRET=$(barge webhooks create ...)` just works.
      io.out(created.secret ?? '');
      return 0;
    }
    case 'list': {
      const list = await client.json<{ data: Endpoint[] }>('GET', '/webhook_endpoints?limit=100');
      if (args.json) io.out(JSON.stringify(list.data, null, 2));
      else if (list.data.length === 0) io.err('No webhook endpoints yet.');
      else {
        io.out(
          formatTable(
            ['ID', 'URL', 'EVENTS', 'STATUS', 'SECRET', 'NAME'],
            list.data.map((e) => [
              e.id,
              e.url,
              e.event_types.join(','),
              e.status,
              e.secret_hint,
              e.name ?? '-',
            ]),
          ),
        );
        for (const e of list.data.filter((d) => d.disabled_reason)) io.err(`${e.id}: ${e.disabled_reason}`);
      }
      return 0;
    }
    case 'delete': {
      const id = oneId(args.positionals, 'delete');
      await client.json('DELETE', `/webhook_endpoints/${encodeURIComponent(id)}`);
      io.out(`Deleted ${id}.`);
      return 0;
    }
    case 'rotate': {
      const id = oneId(args.positionals, 'rotate');
      const rotated = await client.json<Endpoint & { previous_secret_expires_at: number | null }>(
        'POST',
        `/webhook_endpoints/${encodeURIComponent(id)}/rotate_secret`,
        { keep_previous_secret: args['keep-previous'] ?? false },
      );
      io.err(
        rotated.previous_secret_expires_at
          ? `Rotated the secret of ${id}; the old one stays valid until ${new Date(rotated.previous_secret_expires_at * 1000).toISOString()}.`
          : `Rotated the secret of ${id}; the old one no longer verifies.`,
      );
      io.err('This is the only time the new secret is shown; store it now:');
      io.out(rotated.secret ?? '');
      return 0;
    }
    case 'test': {
      const id = oneId(args.positionals, 'test');
      const result = await client.json<{
        ok: boolean;
        event_id: string;
        event_type: string;
        response_status_code: number | null;
        error: string | null;
        duration_ms: number;
      }>(
        'POST',
        `/webhook_endpoints/${encodeURIComponent(id)}/test`,
        args.event ? { event_type: args.event } : {},
      );
      if (args.json) io.out(JSON.stringify(result, null, 2));
      else {
        const answer =
          result.response_status_code !== null ? `HTTP ${result.response_status_code}` : result.error;
        io.out(
          `${result.ok ? 'ok' : 'failed'}: ${result.event_type} ${result.event_id} -> ${answer} in ${result.duration_ms} ms`,
        );
      }
      return result.ok ? 0 : 1;
    }
    default:
      throw new UsageError(action ? `unknown webhooks command "${action}"` : 'webhooks needs a command');
  }
}

export const WEBHOOKS_USAGE = `  barge webhooks create --url URL [--events batch.completed,...] [--name LABEL] [--payload thin|full]
                                                   add a receiver; its signing secret is printed
                                                   once, as the last line (default: all 4 events)
  barge webhooks list [--json]                     the tenant's endpoints (secrets as hints only)
  barge webhooks delete WEBHOOK_ID                 remove an endpoint
  barge webhooks rotate WEBHOOK_ID [--keep-previous]
                                                   a new secret (the old one valid 24 h more)
  barge webhooks test WEBHOOK_ID [--event TYPE]    send a test event; exit 1 if it failed`;

/** Runs `barge webhooks ...` against the API (Barge's /v1/webhook_endpoints); returns the exit code. */
export async function webhooksApiCommand(
  argv: string[],
  io: CliIO,
  env: Record<string, string | undefined>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...API_OPTIONS,
        url: { type: 'string' },
        events: { type: 'string' },
        name: { type: 'string' },
        payload: { type: 'string' },
        'keep-previous': { type: 'boolean' },
        event: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [action, ...positionals] = parsed.positionals;
  const client = new ApiClient(resolveTarget(parsed.values, env));
  return webhooksCommand(client, action ?? '', { ...parsed.values, positionals }, io);
}
