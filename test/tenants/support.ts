import { execFile } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { TenantQuotas } from '../../src/tenants/tenant-quotas';
import type { OverrideValue, QuotaName } from '../../src/tenants/quotas';
import { createTenant, openaiFor, TestTenant, uniqueTenant, withTestDb } from '../support/api';
import { ROOT, stackConfig } from '../support/stack';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The compiled CLI as a child process, with the test stack's environment and nothing on stdin. */
export function barge(...args: string[]): Promise<Run> {
  return bargeWith({}, ...args);
}

/** The same with `env` over the stack's, and `input` on its stdin. */
export function bargeWith(
  options: { env?: Record<string, string>; input?: string },
  ...args: string[]
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(ROOT, 'dist/src/cli/barge.js'), ...args],
      { env: { ...process.env, ...options.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? '');
  });
}

export interface QuotaTenant extends TestTenant {
  name: string;
  client: OpenAI;
}

/** A new tenant with its own key and an SDK client that never retries (429s must be seen). */
export async function quotaTenant(prefix: string): Promise<QuotaTenant> {
  const name = uniqueTenant(prefix);
  const tenant = await createTenant(name);
  return { ...tenant, name, client: openaiFor(tenant.key, { maxRetries: 0 }) };
}

/** Sets quota overrides with the same code as `barge tenants set`. */
export async function setQuotas(name: string, values: Partial<Record<QuotaName, OverrideValue>>) {
  await withTestDb((db) => new TenantQuotas(db, stackConfig().quotas).set(name, values));
}

/** The OpenAI error a promise rejects with (fails the test when it resolves). */
export async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}
