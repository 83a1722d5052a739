import { spawn, ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { buildConfig, BargeConfig } from '../../src/config/config';

/** The configuration of the stack scripts/test.sh started (its env is exported to Jest). */
export function stackConfig(): BargeConfig {
  if (!process.env.BARGE_POSTGRES_URL) {
    throw new Error('integration tests need the test stack: run them with `npm test`');
  }
  return buildConfig(process.env);
}

export const apiUrl = (): string => process.env.BARGE_API_URL ?? 'http://127.0.0.1:18000';

export const ROOT = join(__dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** Starts one of the compiled entry points (dist/) as a child process with extra env. */
export function startProcess(entry: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'dist', entry), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  (child as ChildProcess & { output: () => string }).output = () => output;
  return child;
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * An API process of a test's own, on a free port with `env` on top of the stack's, once it
 * answers `ready` (/readyz when the test needs its dependencies up, else /healthz).
 */
export async function startApi(
  env: Record<string, string> = {},
  ready: '/healthz' | '/readyz' = '/healthz',
): Promise<{ api: ChildProcess; url: string }> {
  const port = await freePort();
  const api = startProcess('src/main.js', { ...env, BARGE_API_PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('api', async () => (await fetch(`${url}${ready}`)).ok);
  return { api, url };
}
