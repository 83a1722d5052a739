import { lookup } from 'node:dns/promises';
import { isIP, Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client } from 'undici';
import {
  hostOf,
  ReceiverPolicy,
  ReceiverRefused,
  type ResolvedAddress,
  type Resolver,
} from './receiver-policy';

/**
 * One HTTP POST to a tenant's receiver, SSRF-safe: the URL is checked, the host resolved
 * once, every address checked, and the connection made to the checked address itself (the
 * Host header and TLS SNI still name the host, and the certificate is verified against it),
 * so nothing between the check and the connection can redirect it. Redirects are not followed.
 */

/** Opens a connection to an address that passed the policy. Injected in tests. */
export type Connector = (target: {
  address: string;
  family: 4 | 6;
  port: number;
  tls: boolean;
  /** The name for SNI and the certificate check; absent for an IP-literal URL. */
  servername?: string;
  timeoutMs: number;
}) => Promise<Socket>;

export interface SendResult {
  /** The receiver answered 2xx. */
  ok: boolean;
  status: number | null;
  /** The start of the answer's body, for the delivery log. */
  body: string | null;
  /** Why there was no answer (refused by policy, connection failed, timed out), else null. */
  error: string | null;
  /** True when the policy refused the URL or its addresses: nothing was sent. */
  refused: boolean;
  durationMs: number;
}

/** How much of an answer's body the delivery log keeps. */
export const MAX_LOGGED_BODY = 512;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

export const tcpConnector: Connector = ({ address, port, tls, servername, timeoutMs }) =>
  new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host: address, port, servername, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: address, port });
    const timer = setTimeout(
      () => socket.destroy(new Error(`connecting timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

export class WebhookSender {
  constructor(
    private readonly policy: ReceiverPolicy,
    private readonly options: { timeoutMs: number },
    private readonly resolver: Resolver = systemResolver,
    private readonly connector: Connector = tcpConnector,
    private readonly now: () => number = Date.now,
  ) {}

  /** POSTs `body`; never throws: every failure is described in the result. */
  async send(rawUrl: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = this.now();
    const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({
      ...r,
      durationMs: this.now() - started,
    });
    let url: URL;
    let target: ResolvedAddress;
    try {
      url = this.policy.parse(rawUrl);
      [target] = await this.policy.resolve(url, this.resolver);
    } catch (err) {
      const message = err instanceof ReceiverRefused ? err.message : String(err);
      return done({ ok: false, status: null, body: null, error: `refused: ${message}`, refused: true });
    }
    const host = hostOf(url);
    const useTls = url.protocol === 'https:';
    const port = url.port ? Number(url.port) : useTls ? 443 : 80;
    const timeoutMs = this.options.timeoutMs;
    const client = new Client(url.origin, {
      connect: (_opts, callback) => {
        this.connector({
          ...target,
          port,
          tls: useTls,
          servername: isIP(host) ? undefined : host,
          timeoutMs,
        }).then(
          (socket) => callback(null, socket),
          (err: Error) => callback(err, null),
        );
      },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      pipelining: 1,
    });
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      const response = await client.request({
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Barge-Webhooks/1',
          ...headers,
        },
        body,
        signal: deadline,
      });
      const text = await readSome(response.body, MAX_LOGGED_BODY);
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return done({ ok, status: response.statusCode, body: text, error: null, refused: false });
    } catch (err) {
      const message = deadline.aborted ? `no answer within ${timeoutMs} ms` : describe(err);
      return done({ ok: false, status: null, body: null, error: message, refused: false });
    } finally {
      await client.destroy().catch(() => undefined);
    }
  }
}

/** Up to `max` characters of a body; the rest is not read (the connection is closed after). */
async function readSome(body: AsyncIterable<Buffer> & { destroy(): void }, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= max * 4) break;
  }
  body.destroy();
  // Stored as text: no NUL (decoding makes no lone surrogates; see common/text.ts).
  const text = Buffer.concat(parts).toString('utf8').split('\u0000').join('');
  return [...text].slice(0, max).join('');
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
