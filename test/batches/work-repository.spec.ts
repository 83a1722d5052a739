import type { DataSource } from 'typeorm';
import { ByteBudget } from '../../src/batches/dispatch/byte-budget';
import { outcomeLine } from '../../src/batches/finalize/output-lines';
import { BatchRepository } from '../../src/batches/store/batch.repository';
import {
  OUTPUT_PAGE_ROWS_SQL,
  OUTPUT_PAGE_SIZES_SQL,
  PAGE_MEMORY_PER_BYTE,
  WorkRepository,
  type RequestOutcome,
} from '../../src/batches/store/work.repository';
import { COMPACT_SQL } from '../../src/batches/store/result-index';
import { createDataSource } from '../../src/database/data-source';
import { FileStore } from '../../src/files/file-store';
import { MinioStorage } from '../../src/storage/minio-storage';
import { createTenant, uniqueTenant } from '../support/api';
import { insertBatchInProgress } from '../support/batch-rows';
import { stackConfig } from '../support/stack';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

/** Rows read from request_results by every scan node of a plan, loops included. */
function rowsScanned(node: PlanNode): number {
  const own = node['Relation Name'] === 'request_results' ? node['Actual Rows'] * node['Actual Loops'] : 0;
  return own + (node.Plans ?? []).reduce((n, child) => n + rowsScanned(child), 0);
}

/** The recorded rows of a batch, as finalize pages them into the output and error files (real Postgres). */
describe('WorkRepository.outputs', () => {
  const config = stackConfig();
  const storage = new MinioStorage(config.storage);
  let db: DataSource;
  let files: FileStore;
  let batches: BatchRepository;
  let work: WorkRepository;
  let tenantId: string;

  beforeAll(async () => {
    db = createDataSource(config, 'barge-test');
    await db.initialize();
    files = new FileStore(db, storage, config);
    batches = new BatchRepository(db);
    work = new WorkRepository(db);
    tenantId = (await createTenant(uniqueTenant('work-repo'))).tenantId;
  });
  afterAll(() => db.destroy());

  const batchInProgress = async (): Promise<string> =>
    (await insertBatchInProgress({ files, batches }, tenantId, '{"custom_id":"x","body":{}}\n')).id;

  const outcome = (line: number, ok: boolean, size: number): RequestOutcome => ({
    line,
    customId: `c-${line}`,
    ok,
    output: JSON.stringify({ custom_id: `c-${line}`, pad: 'x'.repeat(size) }),
    inputTokens: 0,
    cachedTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
  });

  it('pages each kind by bytes and rows, in line order, every line once; a row larger than a page is a page of its own', async () => {
    const batchId = await batchInProgress();
    // Lines 1..60: every third failed; sizes vary, line 20's is larger than a page.
    const outcomes = Array.from({ length: 60 }, (_, i) =>
      outcome(i + 1, (i + 1) % 3 !== 0, i + 1 === 20 ? 3_000 : 40 + ((i * 37) % 200)),
    );
    // Recorded out of order, as chunks finish.
    await work.record(batchId, [...outcomes].reverse().slice(0, 30));
    await work.record(batchId, [...outcomes].reverse().slice(30));

    for (const ok of [true, false]) {
      const pages: number[][] = [];
      const lines: number[] = [];
      const spy = jest.spyOn(db, 'query');
      for await (const row of work.outputs(batchId, ok, { pageBytes: 1_000, pageRows: 7 })) {
        lines.push(row.line);
        expect(JSON.parse(row.output).custom_id).toBe(`c-${row.line}`);
      }
      // Each page is two queries: the sizes, then the rows.
      const rowQueries = spy.mock.calls.filter(([sql]) => sql === OUTPUT_PAGE_ROWS_SQL);
      spy.mockRestore();
      const expected = outcomes.filter((o) => o.ok === ok).map((o) => o.line);
      expect(lines).toEqual(expected);
      let at = 0;
      for (const [, params] of rowQueries) {
        const [, , after, last] = params as [string, boolean, number, number];
        const page = expected.filter((l) => l > after && l <= last);
        pages.push(page);
        at += page.length;
        const bytes = outcomes
          .filter((o) => page.includes(o.line))
          .reduce((n, o) => n + Buffer.byteLength(o.output), 0);
        expect(page.length).toBeLessThanOrEqual(7);
        if (page.length > 1) expect(bytes).toBeLessThanOrEqual(1_000);
      }
      expect(at).toBe(expected.length);
      if (ok) expect(pages.some((p) => p.length === 1 && p[0] === 20)).toBe(true);
    }
  });

  it('records outputs exactly as given, quotes, backslashes and any Unicode included, each on its own line', async () => {
    const batchId = await batchInProgress();
    const awkward = ['"', '\\', '\\"', '{}', ',', "'", '\u2028', '\u0000', 'ü€😀', '\\n', 'NULL', ' '];
    const outcomes = awkward.map((text, i) => ({
      ...outcome(i + 1, i % 2 === 0, 0),
      output: JSON.stringify({ custom_id: `c-${i + 1}`, text, raw: `a${text}b` }),
    }));
    expect(await work.record(batchId, outcomes)).toHaveLength(awkward.length);
    const stored: string[] = [];
    for (const ok of [true, false])
      for await (const row of work.outputs(batchId, ok)) stored[row.line - 1] = row.output;
    expect(stored).toEqual(outcomes.map((o) => o.output));
    const [{ bytes }] = await db.query(
      `SELECT sum(bytes)::int AS bytes FROM request_results WHERE batch_id = $1`,
      [batchId],
    );
    expect(bytes).toBe(outcomes.reduce((n, o) => n + Buffer.byteLength(o.output), 0));
  });

  it('records custom_ids and usage exactly as given, quotes, backslashes and any Unicode included', async () => {
    const batchId = await batchInProgress();
    // NUL aside: validation refuses it in a custom_id, and Postgres text cannot hold it.
    const awkward = ['"', '\\', '\\"', '{}', ',', "'", '\u2028', 'ü€😀', '\\n', 'NULL', ' ', '', '\\u0000'];
    const outcomes = awkward.map((customId, i) => ({
      ...outcome(i + 1, true, 0),
      customId,
      inputTokens: i,
      cachedTokens: 2 * i,
      outputTokens: 3 * i,
      reasoningTokens: 4 * i,
      upstream: i % 2 ? `up"${i}` : undefined,
    }));
    expect(await work.record(batchId, outcomes)).toHaveLength(awkward.length);
    const rows: { line: number; custom_id: string }[] = await db.query(
      `SELECT line, custom_id FROM request_results WHERE batch_id = $1 ORDER BY line`,
      [batchId],
    );
    expect(rows.map((r) => r.custom_id)).toEqual(awkward);
    const [totals] = await db.query(
      `SELECT input_tokens::int AS i, cached_tokens::int AS c, output_tokens::int AS o, reasoning_tokens::int AS r
         FROM batches WHERE id = $1`,
      [batchId],
    );
    const sum = (k: number) => awkward.reduce((n, _, i) => n + k * i, 0);
    expect(totals).toEqual({ i: sum(1), c: sum(2), o: sum(3), r: sum(4) });
    const perUpstream: { upstream: string; n: number }[] = await db.query(
      `SELECT upstream, request_completed::int AS n FROM batch_upstream_usage WHERE batch_id = $1 ORDER BY upstream`,
      [batchId],
    );
    expect(perUpstream).toEqual(
      outcomes
        .filter((o) => o.upstream)
        .map((o) => ({ upstream: o.upstream, n: 1 }))
        .sort((a, b) => (a.upstream! < b.upstream! ? -1 : 1)),
    );
  });

  it('records the answers of an upstream that reports impossible usage, counting none of it', async () => {
    const batchId = await batchInProgress();
    const hostile = [1.5, -3, 1e300, 2 ** 60];
    const outcomes: RequestOutcome[] = hostile.map((tokens, i) => {
      const body = { object: 'chat.completion', usage: { prompt_tokens: tokens, completion_tokens: tokens } };
      const line = outcomeLine(`c-${i + 1}`, {
        kind: 'http',
        status: 200,
        body,
        text: JSON.stringify(body),
        upstreamRequestId: null,
        upstream: 'sim',
        attempts: 1,
      });
      return { ...outcome(i + 1, line.ok, 0), output: line.output, ...line.usage, upstream: 'sim' };
    });
    expect(await work.record(batchId, outcomes)).toHaveLength(hostile.length);
    const [row] = await db.query(
      `SELECT request_completed::int AS completed, input_tokens::text AS input, output_tokens::text AS output
         FROM batches WHERE id = $1`,
      [batchId],
    );
    expect(row).toEqual({ completed: hostile.length, input: '0', output: '0' });
  });

  it('refuses an output holding a raw newline instead of shifting the outputs after it', async () => {
    const batchId = await batchInProgress();
    const outcomes = [
      outcome(1, true, 10),
      { ...outcome(2, true, 10), output: '{"a":\n1}' },
      outcome(3, true, 10),
    ];
    await expect(work.record(batchId, outcomes)).rejects.toThrow(/line 2 holds a raw newline/);
    expect(await work.countOutcomes(batchId)).toEqual({ ok: 0, failed: 0 });
  });

  it('takes room for each page from a memory budget before reading it, and gives it back once the page is handed on', async () => {
    const batchId = await batchInProgress();
    await work.record(
      batchId,
      Array.from({ length: 30 }, (_, i) => outcome(i + 1, true, 200)),
    );
    const memory = new ByteBudget(1_000 * PAGE_MEMORY_PER_BYTE);

    // While the budget is full, no page is read.
    const spy = jest.spyOn(db, 'query');
    const full = memory.charge(memory.limit);
    const lines = work.outputs(batchId, true, { pageBytes: 1_000, memory });
    const first = lines.next();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(spy.mock.calls.filter(([sql]) => sql === OUTPUT_PAGE_ROWS_SQL)).toHaveLength(0);
    expect(memory.queued).toBe(1);
    full();

    // Each page holds room while its rows are handed out, and only one page at a time.
    const held: number[] = [];
    let row = await first;
    while (!row.done) {
      held.push(memory.inUse);
      row = await lines.next();
    }
    spy.mockRestore();
    expect(held).toHaveLength(30);
    expect(Math.min(...held)).toBeGreaterThan(0);
    expect(Math.max(...held)).toBeLessThanOrEqual(memory.limit);
    expect(memory.inUse).toBe(0);

    // A reader that stops early gives its page back too.
    for await (const early of work.outputs(batchId, true, { pageBytes: 1_000, memory })) {
      expect(early.line).toBe(1);
      break;
    }
    expect(memory.inUse).toBe(0);
  });

  it("reads about a page's rows per page, even with statistics taken before the batch had any row", async () => {
    const batchId = await batchInProgress();
    // The statistics now know nothing of this batch: the planner expects it to have ~no rows.
    await db.query('ANALYZE request_results');
    for (let first = 1; first <= 6_000; first += 1_000) {
      await work.record(
        batchId,
        Array.from({ length: 1_000 }, (_, i) => outcome(first + i, true, 100)),
      );
    }
    const explain = async (sql: string, params: unknown[]): Promise<PlanNode> => {
      const [row] = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
      return row['QUERY PLAN'][0].Plan as PlanNode;
    };
    const sizes = await explain(OUTPUT_PAGE_SIZES_SQL, [batchId, true, 2_000, 500]);
    const rows = await explain(OUTPUT_PAGE_ROWS_SQL, [batchId, true, 2_000, 2_500]);
    // 500 rows each; the self-join this replaced read 500 x ~4,000 here.
    expect(sizes['Actual Rows']).toBe(500);
    expect(rows['Actual Rows']).toBe(500);
    expect(rowsScanned(sizes)).toBeLessThanOrEqual(1_000);
    expect(rowsScanned(rows)).toBeLessThanOrEqual(1_000);

    // Compacting the ended batch's 6,000 rows (a self-join, run as compactResults runs it) reads
    // each row a few times, not 6,000 times. Rolled back: only the plan is wanted.
    const runner = db.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      await runner.query('SET LOCAL enable_nestloop = off');
      const [row] = await runner.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${COMPACT_SQL}`, [
        batchId,
        true,
        '^$',
        '^$',
      ]);
      const plan = row['QUERY PLAN'][0].Plan as PlanNode;
      expect(rowsScanned(plan)).toBeLessThanOrEqual(4 * 6_000);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  });

  it('records overlapping outcomes from concurrent recorders in any order without a deadlock, each line once', async () => {
    // A chunk's outcomes reach Postgres in completion order, and two recorders can overlap (a
    // chunk retried on another worker while the first still runs; finalize): their inserts
    // must wait on each other in one order, or Postgres aborts one as a deadlock.
    const lines = Array.from({ length: 300 }, (_, i) => outcome(i + 1, true, 10));
    let seed = 7;
    const shuffled = (): RequestOutcome[] => {
      const out = [...lines];
      for (let i = out.length - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const j = seed % (i + 1);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    };
    for (let round = 0; round < 8; round++) {
      const batchId = await batchInProgress();
      const recorded = await Promise.all([
        work.record(batchId, lines),
        work.record(batchId, [...lines].reverse()),
        work.record(batchId, shuffled()),
        work.record(batchId, shuffled()),
      ]);
      expect(recorded.flat().sort((a, b) => a - b)).toEqual(lines.map((o) => o.line));
      expect(await work.countOutcomes(batchId)).toEqual({ ok: lines.length, failed: 0 });
    }
  });

  it("moves the usage per answering upstream with the batch's, once per line, concurrent recorders included", async () => {
    const batchId = await batchInProgress();
    const answered = (line: number, upstream: string | null): RequestOutcome => ({
      ...outcome(line, upstream !== null, 10),
      inputTokens: 10 * line,
      cachedTokens: line,
      outputTokens: 3 * line,
      reasoningTokens: 1,
      upstream,
    });
    // Lines 1..40 alternate between two upstreams; every fifth has none (finalize's unanswered lines).
    const outcomes = Array.from({ length: 40 }, (_, i) =>
      answered(i + 1, (i + 1) % 5 === 0 ? null : i % 2 ? 'a' : 'b'),
    );
    // Four recorders at once, with every line sent twice.
    await Promise.all([
      work.record(batchId, outcomes.slice(0, 20)),
      work.record(batchId, outcomes.slice(20)),
      work.record(batchId, outcomes.slice(10, 30)),
      work.record(batchId, [...outcomes].reverse()),
    ]);
    const rows: Record<string, string | number>[] = await db.query(
      `SELECT upstream, request_completed, request_failed, input_tokens::int, cached_tokens::int,
              output_tokens::int, reasoning_tokens::int
         FROM batch_upstream_usage WHERE batch_id = $1 ORDER BY upstream`,
      [batchId],
    );
    const expected = (upstream: string) => {
      const mine = outcomes.filter((o) => o.upstream === upstream);
      const sum = (f: (o: RequestOutcome) => number) => mine.reduce((n, o) => n + f(o), 0);
      return {
        upstream,
        request_completed: mine.length,
        request_failed: 0,
        input_tokens: sum((o) => o.inputTokens),
        cached_tokens: sum((o) => o.cachedTokens),
        output_tokens: sum((o) => o.outputTokens),
        reasoning_tokens: mine.length,
      };
    };
    expect(rows).toEqual([expected('a'), expected('b')]);
    const [batch] = await db.query(`SELECT input_tokens::int FROM batches WHERE id = $1`, [batchId]);
    const unattributed = outcomes.filter((o) => o.upstream === null).reduce((n, o) => n + o.inputTokens, 0);
    expect(batch.input_tokens).toBe(expected('a').input_tokens + expected('b').input_tokens + unattributed);
  });
});
