import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { alive, readPid, signal } from '../support/pids';
import { ROOT, waitFor } from '../support/stack';
import { stackPids } from './support';

const STACK = join(ROOT, 'scripts', 'stack.sh');

/**
 * The local stack's supervisor (scripts/stack.sh supervise), on a stand-in process in a
 * directory of the test's own: a process that dies comes back, the reason is logged, and a
 * stopped supervisor restarts nothing.
 */
describe('stack supervisor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'barge-supervise-'));
  const pidFile = join(dir, 'demo.pid');
  const logFile = join(dir, 'demo.log');
  const starts = join(dir, 'starts');
  let supervisor: number;

  const childPid = () => readPid(pidFile);
  const log = () => readFileSync(logFile, 'utf8');

  beforeAll(async () => {
    writeFileSync(starts, '');
    // The stand-in exits with code 3 on its first start, then stays up.
    const script = `
      const fs = require('node:fs');
      fs.appendFileSync(${JSON.stringify(starts)}, 'x');
      if (fs.readFileSync(${JSON.stringify(starts)}, 'utf8').length === 1) process.exit(3);
      setInterval(() => {}, 1000);`;
    const out = openSync(logFile, 'a');
    const child = spawn('bash', [STACK, 'supervise', 'demo', pidFile, '--', process.execPath, '-e', script], {
      env: { ...process.env, SUPERVISE_BACKOFF_START: '1' },
      stdio: ['ignore', out, out],
      detached: true,
    });
    child.unref();
    closeSync(out); // the supervisor has its own copy
    supervisor = child.pid!;
  });

  afterAll(async () => {
    if (alive(supervisor)) signal(supervisor, 'SIGTERM');
    if (!existsSync(pidFile)) return;
    const pid = childPid();
    if (alive(pid)) signal(pid, 'SIGTERM');
  });

  it('restarts a process that exited, and logs its exit code', async () => {
    await waitFor(
      'a restart after exit code 3',
      async () => /exited with code 3; restarting/.test(log()),
      20_000,
    );
    await waitFor(
      'the second start',
      async () => readFileSync(starts, 'utf8').length === 2 && alive(childPid()),
      20_000,
    );
  });

  it('restarts a process killed by a signal, logs the signal, and run/NAME.pid names the new process', async () => {
    const first = childPid();
    signal(first, 'SIGKILL');
    await waitFor('a restart after SIGKILL', async () => /was killed by signal KILL/.test(log()), 20_000);
    const second = await waitFor(
      'a new process',
      async () => {
        const pid = childPid();
        return pid !== first && alive(pid) && pid;
      },
      20_000,
    );
    expect(second).not.toBe(first);
  });

  it('stops restarting once the supervisor is told to stop', async () => {
    const child = childPid();
    signal(supervisor, 'SIGTERM');
    await waitFor('the supervisor to exit', async () => !alive(supervisor), 10_000);
    expect(log()).toMatch(/stopped supervising demo/);
    // Its process is left for `down` to stop gracefully; once gone, nothing brings it back.
    signal(child, 'SIGTERM');
    await waitFor('the process to exit', async () => !alive(child), 10_000);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(childPid()).toBe(child);
    expect(readFileSync(starts, 'utf8').length).toBe(3);
  });

  it('runs the test stack supervised, and status says so', async () => {
    const { stdout } = await promisify(execFile)('bash', [STACK, 'status'], {
      env: { ...process.env, BARGE_PROFILE: 'test' },
    });
    const { api, worker } = stackPids();
    expect(stdout).toContain(`api: running (pid ${api}, supervised by pid`);
    expect(stdout).toContain(`worker: running (pid ${worker}, supervised by pid`);
  });
});
