import type OpenAI from 'openai';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, downloadLines, submitBatch, waitForStatus } from '../support/batches';
import { apiUrl, waitFor } from '../support/stack';

/** GET /v1/batches/{id}/results while a 10,000-request batch runs, and after it ended. */

interface Page {
  status: number;
  incomplete: string | null;
  hasMore: string | null;
  lastLine: number | null;
  lines: string[];
}

async function resultsPage(
  key: string,
  batchId: string,
  query: Record<string, string | number>,
): Promise<Page> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)] as [string, string]));
  const response = await fetch(`${apiUrl()}/v1/batches/${batchId}/results?${qs}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const text = await response.text();
  const last = response.headers.get('x-last-line');
  return {
    status: response.status,
    incomplete: response.headers.get('x-incomplete'),
    hasMore: response.headers.get('x-has-more'),
    lastLine: last === null ? null : Number(last),
    lines: text.split('\n').filter((l) => l.length > 0),
  };
}

const N = 10_000;
const customIdOf = (line: string) => (JSON.parse(line) as { custom_id: string }).custom_id;
const indexOf = (line: string) => Number(customIdOf(line).slice(2));

describe('results while running', () => {
  let key: string;
  let client: OpenAI;

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('results'));
    client = openaiFor(key);
  });

  it('pages the outcomes of a 10,000-request batch in input order while it runs, and after', async () => {
    // Every 97th request is refused (a failed outcome); the last 200 take 5 s, so the batch
    // is still running while the first 9,800 are read.
    const lines = Array.from({ length: N }, (_, i) =>
      chatLine(`r-${String(i).padStart(5, '0')}`, {
        simulate: {
          latency_ms: i >= N - 200 ? 5_000 : 5,
          ...(i % 97 === 0 && { fail_times: 1_000_000, fail_status: 400 }),
        },
      }),
    );
    const created = await submitBatch(client, lines);
    await waitFor(
      'half of the requests answered',
      async () => (await client.batches.retrieve(created.id)).request_counts!.completed >= N / 2,
      90_000,
    );

    const during: string[] = [];
    let after = 0;
    for (let pages = 0; ; pages++) {
      const page = await resultsPage(key, created.id, { after_line: after, limit: 1_000 });
      expect(page.status).toBe(200);
      expect(page.lines.length).toBeLessThanOrEqual(1_000);
      if (pages === 0) {
        expect(page.incomplete).toBe('true');
        expect(page.lines).toHaveLength(1_000);
      }
      during.push(...page.lines);
      if (page.hasMore !== 'true') break;
      after = page.lastLine!;
      expect(pages).toBeLessThan(20);
    }
    const status = (await client.batches.retrieve(created.id)).status;
    expect(['in_progress', 'finalizing']).toContain(status);
    expect(during.length).toBeGreaterThanOrEqual(N / 2);
    expect(during.length).toBeLessThan(N);
    // Input order, each request once.
    const order = during.map(indexOf);
    expect(order.every((v, i) => i === 0 || v > order[i - 1])).toBe(true);

    const failedOnly = await resultsPage(key, created.id, { status: 'failed', limit: 10_000 });
    expect(failedOnly.lines.length).toBeGreaterThan(0);
    expect(failedOnly.lines.every((l) => indexOf(l) % 97 === 0)).toBe(true);
    const one = await resultsPage(key, created.id, { custom_id: 'r-00042' });
    expect(one.lines.map(customIdOf)).toEqual(['r-00042']);
    expect(JSON.parse(one.lines[0])).toMatchObject({ response: { status_code: 200 }, error: null });

    const batch = await waitForStatus(client, created.id, ['completed'], 120_000);
    expect(batch.request_counts).toEqual({
      total: N,
      completed: N - Math.ceil(N / 97),
      failed: Math.ceil(N / 97),
    });
    // After the end the same lines come from the output and error files, byte for byte.
    const output = await (await client.files.content(batch.output_file_id!)).text();
    const errors = await (await client.files.content(batch.error_file_id!)).text();
    const files = [...output.split('\n'), ...errors.split('\n')].filter((l) => l.length > 0);
    const all = await resultsPage(key, created.id, { limit: 10_000 });
    expect(all).toMatchObject({ status: 200, incomplete: 'false', hasMore: 'false', lastLine: N });
    expect(all.lines).toHaveLength(N);
    expect(all.lines.map(indexOf)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect([...all.lines].sort()).toEqual(files.sort());
    // What was read while it ran is the same bytes. Requests finish out of input order, so
    // those pages may have had gaps (lines recorded after the page was read), filled now.
    expect(during).toEqual(during.map((l) => all.lines[indexOf(l)]));
    // Paging and filters over the files too.
    const tail = await resultsPage(key, created.id, { after_line: N - 3, limit: 2 });
    expect(tail).toMatchObject({ hasMore: 'true', lastLine: N - 1 });
    expect(tail.lines.map(indexOf)).toEqual([N - 3, N - 2]);
    const failedAfter = await resultsPage(key, created.id, { status: 'failed', limit: 10_000 });
    expect(failedAfter.lines.sort()).toEqual(
      errors
        .split('\n')
        .filter((l) => l)
        .sort(),
    );
    const completedAfter = await resultsPage(key, created.id, { status: 'completed', custom_id: 'r-09999' });
    expect(completedAfter.lines).toEqual([output.split('\n').find((l) => l.includes('"r-09999"'))]);
  }, 240_000);

  it('answers bad parameters and unknown batches in the OpenAI envelope', async () => {
    const created = await submitBatch(client, [chatLine('x')]);
    const bad = await resultsPage(key, created.id, { status: 'done' });
    expect(bad.status).toBe(400);
    expect((await resultsPage(key, created.id, { limit: 10_001 })).status).toBe(400);
    expect((await resultsPage(key, created.id, { after_line: -1 })).status).toBe(400);
    expect((await resultsPage(key, 'batch_nope', {})).status).toBe(404);
    const other = await createTenantKey(uniqueTenant('results-other'));
    expect((await resultsPage(other, created.id, {})).status).toBe(404);
    const done = await waitForStatus(client, created.id, ['completed']);
    const page = await resultsPage(key, created.id, {});
    expect(page.lines.map((l) => JSON.parse(l))).toEqual(await downloadLines(client, done.output_file_id));
  });
});
