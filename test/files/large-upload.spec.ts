import { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import OpenAI, { toStreamingFile } from 'openai';
import { createTenant, openaiFor, uniqueTenant } from '../support/api';
import { startApi, stopProcess } from '../support/stack';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** How much the upload streams; 2 GiB takes ~20-40 s over loopback into MinIO here. */
const UPLOAD_BYTES = 2 * GiB;
/** The API's resident memory may grow by at most this much while it streams the upload. */
const RSS_BUDGET = 150 * MiB;

/** Resident set size of a process, from /proc (Linux). */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** One MiB of whole JSONL lines (space-padded to exactly 1 MiB). */
function jsonlBlock(): Buffer {
  const line = (i: number) =>
    `${JSON.stringify({ custom_id: `req-${i}`, body: { input: 'x'.repeat(180) } })}\n`;
  let text = '';
  for (let i = 0; text.length < MiB; i++) text += line(i);
  return Buffer.from(text.slice(0, text.lastIndexOf('\n', MiB - 1) + 1).padEnd(MiB, ' '));
}

/** `totalBytes` of JSONL, generated as it is sent: the test process never holds it either. */
async function* generatedJsonl(totalBytes: number): AsyncGenerator<Buffer> {
  const block = jsonlBlock();
  for (let sent = 0; sent < totalBytes; sent += block.length) yield block;
}

/** The upload path end to end with a multi-gigabyte body: bytes flow, memory stays flat. */
describe('a multi-gigabyte upload', () => {
  let api: ChildProcess;
  let baseUrl: string;
  let client: OpenAI;

  beforeAll(async () => {
    ({ api, url: baseUrl } = await startApi({ BARGE_MAX_FILE_BYTES: String(3 * GiB) }));
    client = openaiFor((await createTenant(uniqueTenant('large-upload'))).key, { baseUrl, maxRetries: 0 });
  });

  afterAll(() => stopProcess(api));

  it(`streams ${UPLOAD_BYTES / GiB} GiB to storage while the API's RSS stays within ${RSS_BUDGET / MiB} MiB of its baseline`, async () => {
    // Warm up the whole path (multipart parts included) so the baseline holds the code and pools.
    const warm = await client.files.create({
      file: toStreamingFile(generatedJsonl(24 * MiB), 'warm.jsonl'),
      purpose: 'user_data',
    });
    await client.files.delete(warm.id);

    const pid = api.pid!;
    const baseline = rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 100);
    const started = Date.now();
    let file: OpenAI.FileObject;
    try {
      file = await client.files.create({
        file: toStreamingFile(generatedJsonl(UPLOAD_BYTES), 'big.jsonl'),
        purpose: 'user_data',
      });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `${(file.bytes / GiB).toFixed(2)} GiB in ${seconds.toFixed(1)} s (${(file.bytes / MiB / seconds).toFixed(0)} MiB/s); ` +
        `API RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB, ` +
        `growth ${((peak - baseline) / MiB).toFixed(0)} MiB`,
    );

    expect(file.bytes).toBe(UPLOAD_BYTES);
    expect(peak - baseline).toBeLessThan(RSS_BUDGET);

    // The bytes arrived intact at the far end: the tail reads back as the generator wrote it.
    const tail = await fetch(`${baseUrl}/v1/files/${file.id}/content`, {
      headers: { authorization: `Bearer ${client.apiKey}`, range: `bytes=-${MiB}` },
    });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(jsonlBlock())).toBe(true);

    await client.files.delete(file.id);
  }, 240_000);
});
