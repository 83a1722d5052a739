import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { DataSource } from 'typeorm';
import { connectDatabase } from '../../src/database/data-source';
import { HttpUpstreamGateway } from '../../src/upstreams/gateway';
import { Secret } from '../../src/upstreams/secret';
import { freePort, stackConfig } from '../support/stack';
import { callOf, cleanLimitTables, configWith, Gateways, uniqueName } from './support';

/**
 * An upstream that echoes the Authorization header back in its error messages and headers,
 * as careless providers do: the worst case for keeping the key secret.
 */
async function startEchoServer(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth);
    req.resume();
    req.on('end', () => {
      const status = req.headers['x-barge-request-id']?.toString().endsWith('boom') ? 500 : 401;
      const body = JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${auth}`,
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo': auth });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('upstream API keys', () => {
  let db: DataSource;
  const gateways = new Gateways(() => db);

  beforeAll(async () => {
    db = await connectDatabase(stackConfig(), 'test-upstreams');
  });

  afterAll(async () => {
    await gateways.closeAll();
    await cleanLimitTables(db);
    await db.destroy();
  });

  it('are sent as bearer tokens and never appear in results, errors or logs', async () => {
    const envKey = `sk-env-${randomBytes(16).toString('hex')}`;
    const fileKey = `sk-file-${randomBytes(16).toString('hex')}`;
    const keyFile = join(mkdtempSync(join(tmpdir(), 'barge-key-')), 'key');
    writeFileSync(keyFile, `${fileKey}\n`);
    const echo = await startEchoServer();

    const output: string[] = [];
    const capture = (chunk: unknown): boolean => {
      output.push(String(chunk));
      return true;
    };
    const spies = [
      jest.spyOn(process.stdout, 'write').mockImplementation(capture),
      jest.spyOn(process.stderr, 'write').mockImplementation(capture),
      ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
        jest.spyOn(console, m).mockImplementation((...args: unknown[]) => void output.push(inspect(args))),
      ),
    ];
    try {
      const fromEnv = uniqueName('env');
      const fromFile = uniqueName('file');
      const down = uniqueName('down');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            { name: fromEnv, baseUrl: echo.url, apiKeyEnv: 'UPSTREAM_TEST_KEY' },
            { name: fromFile, baseUrl: echo.url, apiKeyFile: keyFile },
            {
              name: down,
              baseUrl: `http://127.0.0.1:${await freePort()}/v1`,
              apiKeyEnv: 'UPSTREAM_TEST_KEY',
            },
          ],
          routing: { maxAttempts: 2, breakerThreshold: 2 },
        }),
        { env: { UPSTREAM_TEST_KEY: envKey } },
      );

      const results = [
        await gateway.call(callOf({ provider: fromEnv })),
        await gateway.call(callOf({ provider: fromFile })),
        // 500s are retried; the last one is returned.
        await gateway.call(callOf({ provider: fromEnv, requestId: 'x:boom' })),
        // Connection refused twice (only first attempts count toward the circuit's failure
        // rate, so two calls): the circuit opens on the second and is logged, and that call's retry
        // is not sent (unanswered, for a later attempt of the chunk).
        await gateway.call(callOf({ provider: down })),
        await gateway.call(callOf({ provider: down })),
      ];
      expect(echo.seen).toEqual([
        `Bearer ${envKey}`,
        `Bearer ${fileKey}`,
        `Bearer ${envKey}`,
        `Bearer ${envKey}`,
      ]);
      expect(
        results.map((r) => (r.kind === 'http' ? r.status : r.kind === 'error' ? r.code : r.kind)),
      ).toEqual([401, 401, 500, 'upstream_connection_error', 'unanswered']);
      expect(results[0]).toMatchObject({
        body: { error: { message: 'Incorrect API key provided: Bearer [redacted]' } },
      });
      expect(output.join('')).toContain('circuit open');

      const everything = [
        ...results.map((r) => JSON.stringify(r)),
        ...output,
        inspect(gateway, { depth: 50, showHidden: true }),
      ].join('\n');
      expect(everything).not.toContain(envKey);
      expect(everything).not.toContain(fileKey);
    } finally {
      spies.forEach((s) => s.mockRestore());
      await echo.close();
    }
  });

  it("of a tenant replace the operator's on their own upstream only, and are redacted as well", async () => {
    const operatorKey = `sk-operator-${randomBytes(16).toString('hex')}`;
    const tenantKey = `sk-tenant-${randomBytes(16).toString('hex')}`;
    const echo = await startEchoServer();
    try {
      const mine = uniqueName('mine');
      const theirs = uniqueName('theirs');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            { name: mine, baseUrl: echo.url, apiKeyEnv: 'UPSTREAM_TEST_KEY' },
            { name: theirs, baseUrl: echo.url, apiKeyEnv: 'UPSTREAM_TEST_KEY' },
          ],
        }),
        { env: { UPSTREAM_TEST_KEY: operatorKey } },
      );
      const credentials = new Map([[mine, new Secret(tenantKey)]]);
      const results = [
        await gateway.call(callOf({ provider: mine, credentials })),
        await gateway.call(callOf({ provider: theirs, credentials })),
        await gateway.call(callOf({ provider: mine })),
      ];
      expect(echo.seen).toEqual([`Bearer ${tenantKey}`, `Bearer ${operatorKey}`, `Bearer ${operatorKey}`]);
      // A 401 is final: one attempt each.
      expect(results.map((r) => [r.kind === 'http' && r.status, r.attempts])).toEqual([
        [401, 1],
        [401, 1],
        [401, 1],
      ]);
      expect(results[0]).toMatchObject({
        body: { error: { message: 'Incorrect API key provided: Bearer [redacted]' } },
      });
      const everything = [...results.map((r) => JSON.stringify(r)), inspect(credentials)].join('\n');
      expect(everything).not.toContain(tenantKey);
      expect(everything).not.toContain(operatorKey);
    } finally {
      await echo.close();
    }
  });

  it('refuse to start when a configured key is missing, naming only where it was looked for', () => {
    const config = configWith({
      upstreams: [{ name: uniqueName('a'), baseUrl: 'http://127.0.0.1:1/v1', apiKeyEnv: 'NOT_SET_ANYWHERE' }],
    });
    expect(() => HttpUpstreamGateway.forDatabase(config, db, { env: {} })).toThrow(
      /environment variable NOT_SET_ANYWHERE is not set/,
    );
    const noFile = configWith({
      upstreams: [
        { name: uniqueName('a'), baseUrl: 'http://127.0.0.1:1/v1', apiKeyFile: '/nonexistent/key' },
      ],
    });
    expect(() => HttpUpstreamGateway.forDatabase(noFile, db, { env: {} })).toThrow(/cannot read apiKeyFile/);
  });
});
