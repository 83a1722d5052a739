import { UsageError } from './io';

/**
 * The CLI's commands for a tenant's own objects (webhooks, batch retries) talk to the API
 * over HTTP as that tenant, with an API key: the API does every check (receiver policy,
 * encryption, idempotency) exactly as for any client.
 */

export interface ApiTarget {
  baseUrl: string;
  apiKey: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** --base-url / BARGE_API_URL (default http://127.0.0.1:8000) and --api-key / BARGE_API_KEY / OPENAI_API_KEY. */
export function apiTarget(
  values: { 'base-url'?: string; 'api-key'?: string },
  env: NodeJS.ProcessEnv = process.env,
): ApiTarget {
  const apiKey = values['api-key'] ?? env.BARGE_API_KEY ?? env.OPENAI_API_KEY;
  if (!apiKey) throw new UsageError('this command needs an API key: --api-key KEY, or BARGE_API_KEY');
  const base = (values['base-url'] ?? env.BARGE_API_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
  return { baseUrl: base.endsWith('/v1') ? base.slice(0, -3) : base, apiKey };
}

/** One API call; the parsed JSON answer, or ApiError with the API's own message. */
export async function callApi<T = Record<string, unknown>>(
  target: ApiTarget,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${target.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.apiKey}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach the API at ${target.baseUrl}: ${(err as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? text;
    throw new ApiError(response.status, `${response.status}: ${message}`);
  }
  return parsed as T;
}
