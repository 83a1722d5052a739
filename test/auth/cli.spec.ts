import { execFile } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { openaiFor, uniqueTenant } from '../support/api';
import { ROOT } from '../support/stack';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The compiled CLI as a child process, with the test stack's environment. */
function barge(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'dist/src/cli/barge.js'), ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const lastLine = (text: string) => text.trimEnd().split('\n').pop()!;

describe('barge keys (CLI)', () => {
  const tenant = uniqueTenant('cli');

  it('creates, lists and revokes keys', async () => {
    const created = await barge('keys', 'create', '--tenant', tenant, '--name', 'ci');
    expect(created.code).toBe(0);
    const key = lastLine(created.stdout);
    expect(key).toMatch(/^sk-barge-[0-9A-Za-z]{40}$/);
    expect(created.stderr).toContain(`new tenant "${tenant}"`);
    await openaiFor(key, { maxRetries: 0 }).files.list();

    const second = await barge('keys', 'create', '--tenant', tenant);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain('new tenant');

    const listed = await barge('keys', 'list', '--tenant', tenant);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^ID\s+TENANT\s+PREFIX\s+NAME\s+CREATED\s+LAST USED\s+REVOKED\s+ROLE$/);
    expect(rows).toHaveLength(3);
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toContain(lastLine(second.stdout));
    const keyId = rows.find((r) => r.includes(key.slice(0, 15)))!.split(/\s+/)[0];
    expect(keyId).toMatch(/^key_/);

    const revoked = await barge('keys', 'revoke', keyId);
    expect(revoked).toMatchObject({ code: 0, stdout: expect.stringContaining(`Revoked ${keyId}`) });
    await expect(openaiFor(key, { maxRetries: 0 }).files.list()).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    expect((await barge('keys', 'revoke', keyId)).stdout).toContain('already revoked');

    const json = await barge('keys', 'list', '--tenant', tenant, '--json');
    const keys = JSON.parse(json.stdout) as {
      id: string;
      revokedAt: string | null;
      lastUsedAt: string | null;
    }[];
    expect(keys.find((k) => k.id === keyId)).toMatchObject({ revokedAt: expect.any(String) });
    expect(json.stdout).not.toMatch(/sk-barge-[0-9A-Za-z]{40}/);
  });

  it('exits non-zero with a clear message on bad usage', async () => {
    const cases: [string[], number, RegExp][] = [
      [[], 2, /missing command/],
      [['nope'], 2, /unknown command "nope"/],
      [['keys', 'create'], 2, /needs --tenant/],
      [['keys', 'create', '--tenant', '../bad name'], 2, /invalid tenant name/],
      [['keys', 'create', '--tenant', 'x', '--bogus'], 2, /Unknown option '--bogus'/],
      [['keys', 'revoke'], 2, /exactly one KEY_ID/],
      [['keys', 'revoke', 'key_doesnotexist'], 1, /no key with id key_doesnotexist/],
    ];
    for (const [args, code, message] of cases) {
      const run = await barge(...args);
      expect({ args, code: run.code }).toEqual({ args, code });
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
    }
    const help = await barge('--help');
    expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining('barge keys create') });
  });
});
