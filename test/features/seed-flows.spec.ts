import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from 'openai/resources/batches';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { downloadLines, waitForStatus } from '../support/batches';
import { apiUrl } from '../support/stack';

/**
 * The seed providers' documented flows, as a new user runs them against Barge with only the
 * base URL changed: Novita's example file (lines with custom_id and body only), its curl
 * commands and its Python SDK code, a 48h window or none at all.
 */

const NOVITA_EXAMPLE =
  '{"custom_id": "request-1", "body": {"model": "deepseek/deepseek-v3-0324", "messages": [{"role": "user", "content": "Hello, world!"}], "max_tokens": 400}}\n' +
  '{"custom_id": "request-2", "body": {"model": "deepseek/deepseek-v3-0324", "messages": [{"role": "system", "content": "You are a helpful assistant."},{"role": "user", "content": "Hello world!"}],"max_tokens": 1000}}\n';

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

describe("the seed providers' flows", () => {
  let key: string;
  let dir: string;

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('seeds'));
    dir = mkdtempSync(join(tmpdir(), 'barge-seeds-'));
    writeFileSync(join(dir, 'batch_input.jsonl'), NOVITA_EXAMPLE);
  });

  const curl = async (...args: string[]) =>
    JSON.parse(await run('curl', ['-sS', '--fail-with-body', '-H', `Authorization: Bearer ${key}`, ...args]));

  it.each([
    ['with a 48h window', ', "completion_window": "48h"', '48h'],
    ['with the window left out', '', '24h'],
  ])("runs Novita's curl flow %s", async (_name, window, expected) => {
    const base = `${apiUrl()}/v1`;
    const file = await curl(
      `${base}/files`,
      '-F',
      'purpose=batch',
      '-F',
      `file=@${join(dir, 'batch_input.jsonl')}`,
    );
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'batch_input.jsonl' });
    const created = await curl(
      `${base}/batches`,
      '-H',
      'Content-Type: application/json',
      '-d',
      `{"input_file_id": "${file.id}", "endpoint": "/v1/chat/completions"${window}}`,
    );
    expect(created).toMatchObject({ object: 'batch', status: 'validating', completion_window: expected });
    expect(created.expires_at - created.created_at).toBe(Number(expected.slice(0, -1)) * 3600);

    let batch: Batch = created;
    for (let i = 0; i < 240 && !['completed', 'failed', 'expired', 'cancelled'].includes(batch.status); i++) {
      await new Promise((r) => setTimeout(r, 250));
      batch = await curl(`${base}/batches/${created.id}`);
    }
    expect(batch).toMatchObject({
      status: 'completed',
      request_counts: { total: 2, completed: 2, failed: 0 },
    });
    const output = await run('curl', [
      '-sS',
      '--fail',
      '-H',
      `Authorization: Bearer ${key}`,
      `${base}/files/${batch.output_file_id}/content`,
    ]);
    const lines = output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id).sort()).toEqual(['request-1', 'request-2']);
    expect(
      lines.every(
        (l) => l.response.status_code === 200 && l.response.body.model === 'deepseek/deepseek-v3-0324',
      ),
    ).toBe(true);
  });

  it("runs Novita's Python flow with the official openai package", async () => {
    const script = join(dir, 'novita.py');
    writeFileSync(
      script,
      `import json, os, sys, time
from openai import OpenAI

client = OpenAI(base_url=os.environ["BARGE_BASE_URL"], api_key=os.environ["BARGE_KEY"])
batch_input_file = client.files.create(file=open(sys.argv[1], "rb"), purpose="batch")
batch = client.batches.create(
    input_file_id=batch_input_file.id,
    endpoint="/v1/chat/completions",
    completion_window="48h",
)
while batch.status not in ("completed", "failed", "expired", "cancelled"):
    time.sleep(0.25)
    batch = client.batches.retrieve(batch.id)
content = client.files.content(batch.output_file_id).text if batch.output_file_id else ""
print(json.dumps({"id": batch.id, "status": batch.status, "window": batch.completion_window,
                  "counts": batch.request_counts.model_dump(), "output": content}))
`,
    );
    const pythonPath = process.env.BARGE_TEST_PYTHONPATH;
    if (!pythonPath) throw new Error('BARGE_TEST_PYTHONPATH is not set: run the tests with `npm test`');
    const out = JSON.parse(
      await run('python3', [script, join(dir, 'batch_input.jsonl')], {
        PYTHONPATH: pythonPath,
        BARGE_BASE_URL: `${apiUrl()}/v1`,
        BARGE_KEY: key,
      }),
    );
    expect(out).toMatchObject({
      status: 'completed',
      window: '48h',
      counts: { total: 2, completed: 2, failed: 0 },
    });
    const ids = (out.output as string)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id);
    expect(ids.sort()).toEqual(['request-1', 'request-2']);
  });

  it('runs through the openai npm package with the window left out', async () => {
    const client = openaiFor(key);
    const file = await client.files.create({
      file: await (await import('openai')).toFile(Buffer.from(NOVITA_EXAMPLE), 'batch_input.jsonl'),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
    } as Parameters<typeof client.batches.create>[0]);
    expect(created.completion_window).toBe('24h');
    const batch = await waitForStatus(client, created.id, ['completed']);
    expect((await downloadLines(client, batch.output_file_id)).map((l) => l.custom_id).sort()).toEqual([
      'request-1',
      'request-2',
    ]);
  });
});
