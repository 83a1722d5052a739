import { readFileSync } from 'node:fs';

/**
 * Process ids read from pid files, and signals sent to them. A pid of 0 or below is no process:
 * process.kill(0, sig) signals the caller's whole process group (Jest, npm and whatever ran
 * them, a CI runner included), and -N the group N. A pid file caught between its truncation
 * and its write reads empty, which Number() turns into 0. So every pid passes through here.
 */
export function readPid(file: string): number {
  const text = readFileSync(file, 'utf8').trim();
  const pid = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(pid) || pid <= 1) {
    throw new Error(`${file} holds no process id: ${JSON.stringify(text)}`);
  }
  return pid;
}

function checked(pid: number): number {
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`refusing to signal pid ${pid}`);
  return pid;
}

/** Whether process `pid` exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(checked(pid), 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
    throw err;
  }
}

/** Sends `signal` to process `pid` alone, never to a group. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  process.kill(checked(pid), sig);
}
