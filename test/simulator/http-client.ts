/** Test helpers: plain node:http calls to a simulator on loopback. */
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import type { SimulatorHandle } from '../../src/simulator/server';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/**
 * One request on a fresh connection (no agent), so a reset or hang can never leak into
 * the next test through a pooled socket.
 */
export function call(
  sim: SimulatorHandle,
  method: string,
  path: string,
  body?: unknown,
  options: { headers?: Record<string, string>; timeoutMs?: number; raw?: string } = {},
): Promise<Reply> {
  const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      `${sim.url}${path}`,
      { method, agent: false, headers: { 'content-type': 'application/json', ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () => req.destroy(new Error('client timeout')));
    }
    req.on('error', reject);
    req.end(payload);
  });
}

export const chat = (content: string, extra: object = {}): object => ({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content },
  ],
  ...extra,
});

/**
 * Starts a request and keeps it open: with a `hang` directive it holds one of the simulator's
 * slots until release() gives up on it (as a client's timeout would).
 */
export function hold(sim: SimulatorHandle, body: unknown): { release: () => void } {
  const req: ClientRequest = request(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json' },
  });
  req.on('error', () => undefined); // the release itself
  req.end(JSON.stringify(body));
  return { release: () => req.destroy() };
}

/** Polls `condition` (no fixed sleeps: only as long as the simulator needs). */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
