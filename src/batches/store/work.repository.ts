import type { DataSource, EntityManager } from 'typeorm';
import type { ByteBudget } from '../dispatch/byte-budget';
import { compactResults } from './result-index';

/**
 * What a page of output lines costs in memory while finalize writes it: pg's row buffers, the
 * strings, and the buffers they are joined into for the upload.
 */
export const PAGE_MEMORY_PER_BYTE = 3;

/**
 * A running batch's working data: where each chunk of its input lies (batch_chunks) and each
 * request's final outcome (request_results). Chunks live from validation until the output and
 * error files are committed; outcome rows then stay, slimmed (result-index.ts), while those
 * files exist. Postgres is the truth for "is this request answered".
 */

/** Where one chunk of a batch's input file lies: physical lines [firstLine, firstLine + lineCount). */
export interface ChunkRange {
  idx: number;
  firstLine: number;
  lineCount: number;
  /** Requests in the chunk (lineCount less blank lines). */
  requestCount: number;
  byteStart: number;
  /** Exclusive. */
  byteEnd: number;
}

/** One request's final outcome, as recorded (once) and later written to the output or error file. */
export interface RequestOutcome {
  line: number;
  customId: string;
  ok: boolean;
  /** The finished output-file line (JSON, no trailing newline). */
  output: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  /** The upstream that gave the answer: metrics, and the batch's usage per upstream (its cost). */
  upstream?: string | null;
}

/** Where outcomes are recorded; the dispatch and finalize code depend on this, not on SQL. */
export interface OutcomeRecorder {
  /** Records outcomes exactly once; returns the lines that were new. */
  record(batchId: string, outcomes: readonly RequestOutcome[]): Promise<number[]>;
}

/** A recorded output line and where it came from. */
export interface RecordedLine {
  line: number;
  output: string;
}

type Db = DataSource | EntityManager;

const CHUNK_COLUMNS = 'idx, first_line, line_count, request_count, byte_start, byte_end';

export class WorkRepository implements OutcomeRecorder {
  constructor(private readonly db: DataSource) {}

  /** Validation's chunk table for the batch; a retried validation replaces the earlier one. */
  async replaceChunks(batchId: string, chunks: readonly ChunkRange[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(`DELETE FROM batch_chunks WHERE batch_id = $1`, [batchId]);
      if (chunks.length === 0) return;
      await tx.query(
        `INSERT INTO batch_chunks (batch_id, ${CHUNK_COLUMNS})
         SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::bigint[], $7::bigint[])`,
        [
          batchId,
          chunks.map((c) => c.idx),
          chunks.map((c) => c.firstLine),
          chunks.map((c) => c.lineCount),
          chunks.map((c) => c.requestCount),
          chunks.map((c) => c.byteStart),
          chunks.map((c) => c.byteEnd),
        ],
      );
    });
  }

  /** The chunk, or null when the batch has no such chunk (its working rows are gone). */
  async chunk(batchId: string, idx: number): Promise<ChunkRange | null> {
    const rows = await this.db.query(
      `SELECT ${CHUNK_COLUMNS} FROM batch_chunks WHERE batch_id = $1 AND idx = $2`,
      [batchId, idx],
    );
    return rows.length === 0 ? null : toChunk(rows[0]);
  }

  async chunks(batchId: string): Promise<ChunkRange[]> {
    const rows = await this.db.query(
      `SELECT ${CHUNK_COLUMNS} FROM batch_chunks WHERE batch_id = $1 ORDER BY idx`,
      [batchId],
    );
    return rows.map(toChunk);
  }

  /**
   * Takes (or renews) the chunk's claim for `token` until now + ttl: true when this token
   * holds it. Another live claim makes it false; a lapsed one is taken over.
   */
  async claimChunk(batchId: string, idx: number, token: string, ttlMs: number): Promise<boolean> {
    const [rows] = (await this.db.query(
      `UPDATE batch_chunks SET claim_token = $3, claim_expires_at = now() + $4 * interval '1 millisecond'
        WHERE batch_id = $1 AND idx = $2
          AND (claim_token IS NULL OR claim_token = $3 OR claim_expires_at < now())
        RETURNING idx`,
      [batchId, idx, token, ttlMs],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  async releaseChunk(batchId: string, idx: number, token: string): Promise<void> {
    await this.db.query(
      `UPDATE batch_chunks SET claim_token = NULL, claim_expires_at = NULL
        WHERE batch_id = $1 AND idx = $2 AND claim_token = $3`,
      [batchId, idx, token],
    );
  }

  /** Lines in [from, to) that already have a final outcome. */
  async answeredLines(batchId: string, from: number, to: number): Promise<Set<number>> {
    const rows: { line: number }[] = await this.db.query(
      `SELECT line FROM request_results WHERE batch_id = $1 AND line >= $2 AND line < $3`,
      [batchId, from, to],
    );
    return new Set(rows.map((r) => r.line));
  }

  record(batchId: string, outcomes: readonly RequestOutcome[]): Promise<number[]> {
    return recordOutcomes(this.db, batchId, outcomes);
  }

  async countOutcomes(batchId: string, db: Db = this.db): Promise<{ ok: number; failed: number }> {
    const [row] = await db.query(
      `SELECT count(*) FILTER (WHERE ok)::int AS ok, count(*) FILTER (WHERE NOT ok)::int AS failed
         FROM request_results WHERE batch_id = $1`,
      [batchId],
    );
    return row;
  }

  /**
   * Recorded lines of one kind in line order, in pages of at most `pageBytes` (and
   * `pageRows`): memory stays flat whatever the size of each answer. A row larger than a page
   * is a page of its own.
   *
   * Two range scans of the primary key per page, never a join: request_results grows from
   * nothing within one batch, so its statistics are stale exactly when a batch finalizes,
   * and a planner that believes a page has one row joins it quadratically (a self-join here
   * read ~42 million rows per 2,000-row page; test/batches/work-repository.spec.ts).
   */
  async *outputs(
    batchId: string,
    ok: boolean,
    {
      pageBytes = 8 * 1024 * 1024,
      pageRows = 2_000,
      memory,
    }: {
      pageBytes?: number;
      pageRows?: number;
      /** Room for a page is taken before it is read and given back once it has been handed on. */
      memory?: ByteBudget;
    } = {},
  ): AsyncGenerator<RecordedLine> {
    let after = 0;
    for (;;) {
      const sizes: { line: number; bytes: number }[] = await this.db.query(OUTPUT_PAGE_SIZES_SQL, [
        batchId,
        ok,
        after,
        pageRows,
      ]);
      if (sizes.length === 0) return;
      let last = sizes[0].line;
      let bytes = sizes[0].bytes;
      for (let i = 1; i < sizes.length && bytes + sizes[i].bytes <= pageBytes; i++) {
        last = sizes[i].line;
        bytes += sizes[i].bytes;
      }
      const release = memory ? await memory.acquire(bytes * PAGE_MEMORY_PER_BYTE) : undefined;
      try {
        const rows: RecordedLine[] = await this.db.query(OUTPUT_PAGE_ROWS_SQL, [batchId, ok, after, last]);
        for (const row of rows) yield row;
      } finally {
        release?.();
      }
      after = last;
    }
  }

  /**
   * Once the output files exist the chunks are no longer needed, and the outcome rows are
   * slimmed to an index into those files (results and retry read them; see result-index.ts).
   * Idempotent.
   */
  async deleteWorkingData(batchId: string): Promise<void> {
    await compactResults(this.db, batchId);
    await this.db.query(`DELETE FROM batch_chunks WHERE batch_id = $1`, [batchId]);
  }

  /** Batches that ended but still have working rows (a finalize that died after its commit). */
  async endedWithLeftovers(limit = 100): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT b.id FROM batches b
        WHERE b.status IN ('completed', 'failed', 'expired', 'cancelled')
          AND ((EXISTS (SELECT 1 FROM request_results r WHERE r.batch_id = b.id)
                AND NOT EXISTS (SELECT 1 FROM batch_results k WHERE k.batch_id = b.id))
               OR EXISTS (SELECT 1 FROM batch_chunks c WHERE c.batch_id = b.id))
        LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }
}

/** A page's lines and sizes: the first `$4` recorded lines of one kind after line `$3`. */
export const OUTPUT_PAGE_SIZES_SQL = `SELECT line, bytes FROM request_results
  WHERE batch_id = $1 AND ok = $2 AND line > $3 ORDER BY line LIMIT $4`;
/** A page's rows: the recorded lines of one kind in (`$3`, `$4`]. */
export const OUTPUT_PAGE_ROWS_SQL = `SELECT line, output FROM request_results
  WHERE batch_id = $1 AND ok = $2 AND line > $3 AND line <= $4 ORDER BY line`;

/**
 * Records outcomes exactly once: a line that already has one is skipped, and only rows
 * actually inserted move the batch's counters and usage, and its usage per upstream (all in
 * one statement). Rows arriving after the batch ended are dropped. Returns the lines
 * inserted (metrics count those, once). `db` may be a transaction (finalize records the
 * unanswered requests inside its fenced session).
 */
export async function recordOutcomes(
  db: Db,
  batchId: string,
  outcomes: readonly RequestOutcome[],
): Promise<number[]> {
  if (outcomes.length === 0) return [];
  const rows: { lines: number[] }[] = await db.query(
    `WITH input AS (
       SELECT t.line, t.custom_id, t.ok, o.output, t.input_tokens, t.cached_tokens, t.output_tokens,
              t.reasoning_tokens, t.upstream
         FROM ROWS FROM (json_to_recordset($2::json) AS (line int, custom_id text, ok bool, input_tokens bigint,
                cached_tokens bigint, output_tokens bigint, reasoning_tokens bigint, upstream text))
              WITH ORDINALITY AS t(line, custom_id, ok, input_tokens, cached_tokens, output_tokens, reasoning_tokens, upstream, n)
         JOIN string_to_table($3::text, E'\\n') WITH ORDINALITY AS o(output, n) USING (n)
     ), ins AS (
       INSERT INTO request_results (batch_id, line, custom_id, ok, output, bytes)
       SELECT $1, line, custom_id, ok, output, octet_length(output) FROM input
       -- A straggler finishing after the batch ended must not change it.
       WHERE EXISTS (SELECT 1 FROM batches WHERE id = $1 AND status IN ('in_progress', 'cancelling', 'finalizing'))
       -- In line order: recorders whose lines overlap (a chunk retried elsewhere, finalize) then
       -- wait on each other's rows in one order, never in a cycle (a deadlock).
       ORDER BY line
       ON CONFLICT (batch_id, line) DO NOTHING
       RETURNING line
     ), added AS (
       SELECT i.* FROM input i JOIN ins USING (line)
     ), totals AS (
       SELECT count(*) FILTER (WHERE ok) AS completed, count(*) FILTER (WHERE NOT ok) AS failed,
              coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(cached_tokens), 0) AS cached_tokens,
              coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
              count(*) AS n
         FROM added
     ), upd AS (
       UPDATE batches b SET
         request_completed = request_completed + t.completed,
         request_failed = request_failed + t.failed,
         input_tokens = b.input_tokens + t.input_tokens,
         cached_tokens = b.cached_tokens + t.cached_tokens,
         output_tokens = b.output_tokens + t.output_tokens,
         reasoning_tokens = b.reasoning_tokens + t.reasoning_tokens
       FROM totals t WHERE b.id = $1 AND t.n > 0
       RETURNING b.id
     ), per_upstream AS (
       -- Reads upd, so it runs after it: the batch row is locked first, as by every recorder.
       INSERT INTO batch_upstream_usage AS u (batch_id, upstream, request_completed, request_failed,
              input_tokens, cached_tokens, output_tokens, reasoning_tokens)
       SELECT upd.id, a.upstream, count(*) FILTER (WHERE a.ok), count(*) FILTER (WHERE NOT a.ok),
              sum(a.input_tokens), sum(a.cached_tokens), sum(a.output_tokens), sum(a.reasoning_tokens)
         FROM added a CROSS JOIN upd WHERE a.upstream IS NOT NULL
        GROUP BY upd.id, a.upstream ORDER BY a.upstream
       ON CONFLICT (batch_id, upstream) DO UPDATE SET
         request_completed = u.request_completed + excluded.request_completed,
         request_failed = u.request_failed + excluded.request_failed,
         input_tokens = u.input_tokens + excluded.input_tokens,
         cached_tokens = u.cached_tokens + excluded.cached_tokens,
         output_tokens = u.output_tokens + excluded.output_tokens,
         reasoning_tokens = u.reasoning_tokens + excluded.reasoning_tokens
     )
     SELECT coalesce((SELECT array_agg(line) FROM ins), '{}'::int[]) AS lines`,
    [batchId, outcomeRows(outcomes), joinedOutputs(outcomes)],
  );
  return rows[0].lines;
}

/**
 * Everything of the outcomes but their outputs, as one JSON array for json_to_recordset: one
 * JSON.stringify, native, where nine array parameters each cost pg a literal built in
 * JavaScript (and every custom_id its escaping).
 */
export function outcomeRows(outcomes: readonly RequestOutcome[]): string {
  return JSON.stringify(
    outcomes.map((o) => ({
      line: o.line,
      custom_id: o.customId,
      ok: o.ok,
      input_tokens: o.inputTokens,
      cached_tokens: o.cachedTokens,
      output_tokens: o.outputTokens,
      reasoning_tokens: o.reasoningTokens,
      upstream: o.upstream ?? null,
    })),
  );
}

/**
 * The outputs as one text, a line each, for string_to_table: sent as they are. As a text[]
 * parameter, pg escaped every quote of every output in JavaScript (two regex replaces per
 * element, then one literal of the whole array), a fifth of the worker's allocations at 0 ms
 * upstream latency. An output line is JSON, which never holds a raw newline; one that did
 * would shift every later output onto the wrong row, so it is refused here.
 */
export function joinedOutputs(outcomes: readonly RequestOutcome[]): string {
  return outcomes
    .map((o) => {
      if (o.output.includes('\n')) throw new Error(`the output of line ${o.line} holds a raw newline`);
      return o.output;
    })
    .join('\n');
}

function toChunk(row: Record<string, string | number>): ChunkRange {
  return {
    idx: Number(row.idx),
    firstLine: Number(row.first_line),
    lineCount: Number(row.line_count),
    requestCount: Number(row.request_count),
    byteStart: Number(row.byte_start),
    byteEnd: Number(row.byte_end),
  };
}
