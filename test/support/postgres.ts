import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './stack';

/**
 * A Postgres server of a test's own (the Debian package the stack uses, started with pg_ctl),
 * for tests that stop and start the database under a running batch without disturbing the
 * shared test stack. Run as the `postgres` user when the tests run as root, as stack.sh does.
 */
export interface PrivatePostgres {
  url: string;
  port: number;
  stop(): void;
  start(): void;
  destroy(): void;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bindir = process.env.BARGE_TEST_PG_BINDIR;
  if (!bindir) throw new Error('BARGE_TEST_PG_BINDIR is not set: run the tests with `npm test`');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'barge-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const asPg = (cmd: string, args: string[]) => {
    const root = process.getuid?.() === 0;
    const [file, argv] = root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    const result = spawnSync(file, argv, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr || result.stdout}`);
  };
  asPg(join(bindir, 'initdb'), ['-D', data, '-U', 'barge', '--auth=trust', '-E', 'UTF8', '--locale=C']);
  const start = () =>
    asPg(join(bindir, 'pg_ctl'), [
      'start',
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
    ]);
  const stop = () => asPg(join(bindir, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w']);
  start();
  execFileSync(join(bindir, 'psql'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'barge',
    '-d',
    'postgres',
    '-qc',
    'create database barge',
  ]);
  return {
    url: `postgres://barge:barge@127.0.0.1:${port}/barge`,
    port,
    stop,
    start,
    destroy: () => {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
