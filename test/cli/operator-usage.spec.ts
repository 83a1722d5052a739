import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/stack';

/**
 * The operator's commands answer a mistake in their arguments before they touch Postgres:
 * the CLI (compiled, as an operator runs it) points at a "Postgres" that is a loopback
 * listener counting connections, so a usage error must come with the usage text, exit code
 * 2 and no connection. What needs only the configuration (set-key's upstream, the key itself)
 * is answered before connecting too. A command that does need the database connects to the
 * listener, which shows the count can move.
 */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('barge operator commands: usage errors before Postgres', () => {
  let server: Server;
  let connections = 0;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const config = join(mkdtempSync(join(tmpdir(), 'barge-cli-usage-')), 'barge.yaml');
    writeFileSync(
      config,
      JSON.stringify({ upstreams: [{ name: 'paid', baseUrl: 'http://127.0.0.1:1/v1', models: ['*'] }] }),
    );
    env = {
      ...process.env,
      BARGE_CONFIG: config,
      BARGE_POSTGRES_URL: `postgres://barge:barge@127.0.0.1:${port}/barge`,
      BARGE_SECRETS_ENCRYPTION_KEY: KEY,
      // Never reached: the commands here need Postgres only.
      BARGE_STORAGE_ENDPOINT: 'http://127.0.0.1:1',
      BARGE_STORAGE_ACCESS_KEY: 'ak',
      BARGE_STORAGE_SECRET_KEY: 'sk',
      BARGE_STORAGE_BUCKET: 'barge',
    };
    delete env.BARGE_SIMULATOR_URL;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function barge(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [join(ROOT, 'dist/src/cli/barge.js'), ...args],
        { env: { ...env, ...options.env } },
        (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
        },
      );
      child.stdin?.end(options.input ?? '');
    });
  }

  const usageErrors: [string[], string][] = [
    [['keys', 'create'], 'keys create needs --tenant NAME'],
    [['keys', 'create', '--tenant', 't', 'extra'], 'keys create takes no argument "extra"'],
    [['keys', 'list', 'extra'], 'keys list takes no argument "extra"'],
    [['keys', 'revoke'], 'keys revoke needs exactly one KEY_ID'],
    [['keys', 'revoke', 'a', 'b'], 'keys revoke needs exactly one KEY_ID'],
    [['keys'], 'keys needs a command'],
    [['keys', 'frob'], 'unknown keys command "frob"'],
    [['tenants', 'set', '--max-active-batches', '1'], 'tenants set needs --tenant NAME'],
    [['tenants', 'set', '--tenant', 't'], 'tenants set needs at least one of'],
    [
      ['tenants', 'set', '--tenant', 't', '--max-storage-bytes', '1e3'],
      '--max-storage-bytes wants a whole number >= 0',
    ],
    [['tenants', 'set', '--tenant', 't', '--upstreams', 'a b'], '--upstreams wants "all", "none"'],
    [['tenants', 'list', 'extra'], 'tenants list takes no argument "extra"'],
    [['tenants'], 'tenants needs a command'],
    [['tenants', 'frob'], 'unknown tenants command "frob"'],
    [['tenants', 'set-key', '--upstream', 'paid'], 'tenants set-key needs --tenant NAME'],
    [['tenants', 'set-key', '--tenant', 't'], 'tenants set-key needs --upstream NAME'],
    [
      ['tenants', 'set-key', '--tenant', 't', '--upstream', 'paid', 'sk-on-argv'],
      'tenants set-key takes no arguments (a key is read from --key-env VAR or stdin, never from the command line)',
    ],
    [['tenants', 'delete-key', '--tenant', 't'], 'tenants delete-key needs --upstream NAME'],
    [
      ['tenants', 'delete-key', '--tenant', 't', '--upstream', 'paid', '--key-env', 'K'],
      'tenants delete-key takes no --key-env',
    ],
    [['usage', 'extra'], 'usage takes no argument "extra"'],
    [['usage', '--format', 'xml'], '--format wants one of table, json, csv, not "xml"'],
    [['usage', '--group-by', 'week'], "Invalid value for '--group-by': week. Supported: model, day."],
    [['usage', '--since', 'yesterday'], '--since wants a date (YYYY-MM-DD)'],
    [['usage', '--until', '2026-13-45'], '--until wants a date (YYYY-MM-DD)'],
  ];

  it.each(usageErrors)('%j: the usage text, exit 2, no connection', async (args, message) => {
    const before = connections;
    const run = await barge(args);
    expect({ code: run.code, connections: connections - before }).toEqual({ code: 2, connections: 0 });
    expect(run.stderr).toContain(`barge: ${message}`);
    expect(run.stderr).toContain('Usage: barge <command>');
    expect(run.stdout + run.stderr).not.toContain('sk-on-argv');
  });

  it("answers set-key's configuration and key problems before connecting", async () => {
    const setKey = ['tenants', 'set-key', '--tenant', 't', '--upstream'];
    const cases: [string[], { input?: string; env?: NodeJS.ProcessEnv }, number, string][] = [
      [
        [...setKey, 'nowhere'],
        { input: 'sk-x\n' },
        2,
        'no upstream "nowhere" is configured (configured: paid)',
      ],
      [[...setKey, 'paid', '--key-env', 'UNSET_X'], {}, 2, '--key-env UNSET_X: the variable is not set'],
      [[...setKey, 'paid'], { input: 'sk-x y\n' }, 1, 'not a usable key: it holds spaces'],
      [[...setKey, 'paid'], { input: '\n' }, 1, 'not a usable key: it is empty'],
      [
        [...setKey, 'paid'],
        { input: 'sk-x\n', env: { BARGE_SECRETS_ENCRYPTION_KEY: '' } },
        2,
        'tenant provider keys need secrets.encryptionKey',
      ],
    ];
    for (const [args, options, code, message] of cases) {
      const before = connections;
      const run = await barge(args, options);
      expect({ args, code: run.code, connections: connections - before }).toEqual({
        args,
        code,
        connections: 0,
      });
      expect(run.stderr).toContain(message);
      expect(run.stdout + run.stderr).not.toContain('sk-x');
    }
  });

  it('connects for a command whose arguments are right (the listener counts)', async () => {
    const before = connections;
    const run = await barge(['keys', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('barge: cannot connect to Postgres');
    expect(connections - before).toBeGreaterThan(0);
    // And set-key with a usable key goes on to Postgres once the key is read.
    const afterList = connections;
    const setKey = await barge(['tenants', 'set-key', '--tenant', 't', '--upstream', 'paid'], {
      input: 'sk-x\n',
    });
    expect(setKey.code).toBe(1);
    expect(setKey.stderr).toContain('barge: cannot connect to Postgres');
    expect(connections - afterList).toBeGreaterThan(0);
  });
});
