/**
 * The processes a bench run starts and watches: spawning with logs, readiness, stopping,
 * and their cost read from /proc (CPU time of a process tree, peak RSS).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  ppid: number;
  /** utime + stime, and cutime + cstime (reaped children), in seconds. */
  own: number;
  reaped: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const n = (field: number): number => Number(fields[field - 3]);
  return { ppid: n(4), own: (n(14) + n(15)) / CLOCK_TICKS, reaped: (n(16) + n(17)) / CLOCK_TICKS };
}

/**
 * CPU seconds used so far by `root` and all its descendants, dead ones included: a child
 * that exited was reaped into its parent's cutime/cstime, so the difference of two readings
 * is the tree's CPU between them (Postgres backends come and go).
 */
export function treeCpuSeconds(root: number | undefined): number {
  if (root === undefined) return 0;
  const stats = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.set(Number(entry), stat);
  }
  const children = new Map<number, number[]>();
  for (const [pid, stat] of stats) {
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const stat = stats.get(pid);
    if (stat === undefined) continue;
    total += stat.own + stat.reaped;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** Peak resident set size (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The first line of a pid file (postmaster.pid, the stack's run/*.pid), if it names a live process. */
export function pidFromFile(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').split('\n', 1)[0].trim());
    return Number.isInteger(pid) && pid > 0 && readStat(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A free loopback port (the kernel's pick; closed again before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Resolves with the first match of `pattern` in the process's stdout/stderr. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node [nodeArgs] <entry> <args>` with exactly `env`, its output appended to `logPath`. */
export function startNode(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logPath: string,
  nodeArgs: string[] = [],
): Started {
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${entry}`);
  const log = createWriteStream(logPath, { flags: 'a' });
  let output = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    // Only the start of the output is searched: readiness lines come first.
    if (output.length < 64 * 1024) output += chunk.toString();
    for (const watcher of watchers) watcher();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(
    () => log.end(),
    () => undefined,
  );

  return {
    child,
    pid: child.pid,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const done = (error?: Error, match?: RegExpExecArray): void => {
          watchers.delete(check);
          clearTimeout(timer);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve(match!);
        };
        const check = (): void => {
          const match = pattern.exec(output);
          if (match) done(undefined, match);
        };
        const onExit = (code: number | null): void =>
          done(new Error(`${entry} exited (code ${code}) before printing ${pattern}; see ${logPath}`));
        const timer = setTimeout(
          () => done(new Error(`${entry} did not print ${pattern} within ${timeoutMs} ms; see ${logPath}`)),
          timeoutMs,
        );
        watchers.add(check);
        child.once('exit', onExit);
        check();
        if (child.exitCode !== null) onExit(child.exitCode);
      }),
    stop: async (graceMs = 30_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
