import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, InputLine, submitBatch, waitForStatus } from '../support/batches';
import { apiUrl, ROOT } from '../support/stack';

/** `barge batches ...` as a user runs it: the compiled CLI, stdout not a terminal. */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without anything that would pick a server or a key for the CLI. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['BARGE_BASE_URL', 'BARGE_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_API_KEY'])
    delete env[name];
  return { ...env, ...extra };
}

function barge(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'dist/src/cli/barge.js'), ...args],
      { env: cleanEnv(env), timeout: 55_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const lines = (text: string) => text.trimEnd().split('\n');

function jsonl(inputs: InputLine[]): string {
  return inputs.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

describe('barge batches (CLI against the API)', () => {
  let key: string;
  let client: OpenAI;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('cli-batches'));
    client = openaiFor(key, { maxRetries: 0 });
    dir = await mkdtemp(join(tmpdir(), 'barge-cli-'));
    env = { BARGE_BASE_URL: `${apiUrl()}/v1`, BARGE_API_KEY: key };
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('submits a file, watches it to the end in plain lines, and says where the files are', async () => {
    const input = join(dir, 'requests.jsonl');
    const inputs = Array.from({ length: 12 }, (_, i) =>
      chatLine(`c-${i}`, {
        simulate: { latency_ms: i * 150, ...(i === 5 && { fail_times: 99, fail_status: 400 }) },
      }),
    );
    await writeFile(input, jsonl(inputs));
    const run = await barge(
      [
        'batches',
        'submit',
        input,
        '--endpoint',
        '/v1/chat/completions',
        '--watch',
        '--interval',
        '0.2',
        '--metadata',
        'team=ml',
      ],
      env,
    );
    expect(run.stderr).toMatch(/^Uploaded .*requests\.jsonl as file-\S+ \(\d+ bytes/m);
    expect(run.code).toBe(0);
    const out = lines(run.stdout);
    const id = out[0];
    expect(id).toMatch(/^batch_/);
    // Plain, timestamped lines (no bar, no carriage return), ending with the batch's end.
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stdout).not.toContain('█');
    const progress = out.filter((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /.test(l));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[progress.length - 1]).toMatch(new RegExp(`Z ${id} completed 12/12 done, 1 failed$`));
    expect(out).toContain(`${id} completed: 11 of 12 requests completed, 1 failed`);
    const batch = await client.batches.retrieve(id);
    expect(batch.metadata).toEqual({ team: 'ml' });
    expect(out).toContain(
      `  output: ${batch.output_file_id}  ${apiUrl()}/v1/files/${batch.output_file_id}/content`,
    );
    expect(out).toContain(`  download: barge batches download ${id}`);

    // get, list, download.
    const got = await barge(['batches', 'get', id], env);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ id, status: 'completed', request_counts: { total: 12 } });
    const listed = await barge(['batches', 'list', '--limit', '5'], env);
    expect(listed.code).toBe(0);
    const rows = lines(listed.stdout);
    expect(rows[0]).toMatch(/^ID\s+STATUS\s+ENDPOINT\s+DONE\s+FAILED\s+TOTAL\s+CREATED$/);
    expect(rows[1]).toMatch(
      new RegExp(`^${id}\\s+completed\\s+/v1/chat/completions\\s+12\\s+1\\s+12\\s+\\d{4}-`),
    );

    const out_dir = join(dir, 'results');
    const downloaded = await barge(['batches', 'download', id, '--out', out_dir], env);
    expect(downloaded.code).toBe(0);
    expect(lines(downloaded.stdout)).toEqual([
      expect.stringMatching(new RegExp(`${id}_output\\.jsonl  \\d+ bytes  \\(${batch.output_file_id}\\)$`)),
      expect.stringMatching(new RegExp(`${id}_error\\.jsonl  \\d+ bytes  \\(${batch.error_file_id}\\)$`)),
    ]);
    const output = await readFile(join(out_dir, `${id}_output.jsonl`));
    const expected = Buffer.from(await (await client.files.content(batch.output_file_id!)).arrayBuffer());
    expect(output.equals(expected)).toBe(true);
    const errors = (await readFile(join(out_dir, `${id}_error.jsonl`), 'utf8')).trim().split('\n');
    expect(errors.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(['c-5']);
  });

  it('cancels a running batch; watching it ends with exit code 1', async () => {
    const batch = await submitBatch(
      client,
      Array.from({ length: 10 }, (_, i) => chatLine(`slow-${i}`, { simulate: { latency_ms: 60_000 } })),
    );
    await waitForStatus(client, batch.id, ['in_progress']);
    const cancelled = await barge(['batches', 'cancel', batch.id], env);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout.trim()).toMatch(new RegExp(`^${batch.id} (cancelling|cancelled)$`));
    const watched = await barge(['batches', 'watch', batch.id, '--interval', '0.2'], env);
    expect(watched.code).toBe(1);
    expect(lines(watched.stdout)).toContain(`${batch.id} cancelled: 0 of 10 requests completed, 10 failed`);
    const again = await barge(['batches', 'cancel', batch.id], env);
    expect(again).toMatchObject({ code: 1, stdout: '' });
    expect(again.stderr).toMatch(
      /^barge: Cannot cancel a batch with status 'cancelled'\. \(HTTP 409, batch_not_cancellable\)/,
    );
  });

  it("falls back to OpenAI's variables, and Barge's win over them", async () => {
    const openaiOnly = await barge(['batches', 'list', '--json'], {
      OPENAI_BASE_URL: `${apiUrl()}/v1`,
      OPENAI_API_KEY: key,
    });
    expect(openaiOnly.code).toBe(0);
    expect(JSON.parse(openaiOnly.stdout)).toMatchObject({ object: 'list', data: expect.any(Array) });
    const both = await barge(['batches', 'list'], {
      ...env,
      OPENAI_API_KEY: 'sk-wrong',
      OPENAI_BASE_URL: 'http://127.0.0.1:1/v1',
    });
    expect(both.code).toBe(0);
  });

  it('exits non-zero with a clear message, never printing the key', async () => {
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['batches'], env, 2, /batches needs a command/],
      [['batches', 'nope'], env, 2, /unknown batches command "nope"/],
      [['batches', 'get'], env, 2, /batches get needs ID/],
      [['batches', 'submit', 'x.jsonl'], env, 2, /needs --endpoint/],
      [
        ['batches', 'submit', join(dir, 'missing.jsonl'), '--endpoint', '/v1/chat/completions'],
        env,
        2,
        /no such file/,
      ],
      [['batches', 'list', '--bogus'], env, 2, /Unknown option '--bogus'/],
      [['batches', 'list', '--limit', '0'], env, 2, /--limit must be/],
      [['batches', 'watch', 'b', '--interval', 'soon'], env, 2, /--interval must be/],
      [['batches', 'list'], { BARGE_BASE_URL: env.BARGE_BASE_URL }, 2, /no API key/],
      [['batches', 'get', 'batch_nope'], env, 1, /No such Batch object: batch_nope \(HTTP 404\)/],
      [['batches', 'list'], { ...env, BARGE_API_KEY: 'sk-barge-wrong' }, 1, /HTTP 401, invalid_api_key/],
      [
        ['batches', 'list'],
        { ...env, BARGE_BASE_URL: 'http://127.0.0.1:1/v1' },
        1,
        /cannot reach http:\/\/127\.0\.0\.1:1\/v1/,
      ],
    ];
    for (const [args, runEnv, code, message] of cases) {
      const run = await barge(args, runEnv);
      expect({ args, code: run.code }).toEqual({ args, code });
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toContain(key);
    }
  });
});
