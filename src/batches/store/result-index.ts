import type { DataSource, EntityManager } from 'typeorm';

/**
 * Each request's outcome after the batch has ended: the request_results rows, slimmed.
 *
 * While a batch runs, a row holds its finished output line (`output`). Finalize streams those
 * lines, in line order, into the output file (ok rows) and the error file (the rest), each
 * line followed by "\n". Once the files are committed, `compact` keeps every row but drops its
 * line: `file_offset` says where it starts in its file (the running sum of `bytes + 1` over
 * the earlier rows of that file, exactly what finalize wrote) and `outcome` what happened.
 * A batch's rows then cost about 100 bytes each instead of the whole answer, and results stay
 * readable (a page of rows is at most two ranged reads of the files) for as long as the files
 * exist; `sweepGone` removes the rows of batches whose files have been deleted or expired.
 *
 * If the offsets would not match the committed files (a row recorded after the files were
 * written, which recordOutcomes should prevent), the rows keep their lines instead
 * (`indexed: false`): results are then read from Postgres, as while the batch ran.
 */

export type Outcome = 'completed' | 'failed' | 'expired' | 'cancelled';
export const OUTCOMES: readonly Outcome[] = ['completed', 'failed', 'expired', 'cancelled'];

/** Where one request's line is: in the row itself, or at an offset of the output or error file. */
export interface ResultRow {
  line: number;
  customId: string | null;
  ok: boolean;
  bytes: number;
  /** The line, while the row still has it. */
  output: string | null;
  /** Where the line starts in its file, once compacted. */
  fileOffset: number | null;
}

export interface ResultFilter {
  afterLine: number;
  limit: number;
  /** true: completed only, false: failed only. */
  ok?: boolean;
  customId?: string;
}

type Db = DataSource | EntityManager;

/**
 * Unexecuted requests' error lines (finalize's errorLine: id, custom_id, response null, then
 * error.code) say why; the anchored pattern cannot match inside an upstream's body or a
 * custom_id, both of which come after or inside JSON strings.
 */
const UNEXECUTED = (code: string) =>
  `^\\{"id":"[^"\\\\]*","custom_id":"(?:[^"\\\\]|\\\\.)*","response":null,"error":\\{"code":"${code}"`;

/** Slims one batch's rows: $1 batch, $2 whether the offsets match its files, $3/$4 UNEXECUTED patterns. */
export const COMPACT_SQL = `UPDATE request_results r SET
     file_offset = CASE WHEN $2::boolean THEN p.file_offset END,
     output = CASE WHEN $2::boolean THEN NULL ELSE r.output END,
     outcome = CASE WHEN r.ok THEN 'completed'
                    WHEN r.output ~ $3 THEN 'expired'
                    WHEN r.output ~ $4 THEN 'cancelled'
                    ELSE 'failed' END
     FROM (SELECT line, sum(bytes + 1) OVER (PARTITION BY ok ORDER BY line) - (bytes + 1) AS file_offset
             FROM request_results WHERE batch_id = $1) p
    WHERE r.batch_id = $1 AND r.line = p.line`;

/** Slims an ended batch's rows to an index into its committed files (idempotent; see above). */
export async function compactResults(db: DataSource, batchId: string): Promise<void> {
  await db.transaction(async (tx) => {
    // Serialises compactions of one batch (finalize and the sweep may race) and skips a done one.
    const [batch] = await tx.query(
      `SELECT b.id, b.status, o.bytes AS output_bytes, e.bytes AS error_bytes,
              EXISTS (SELECT 1 FROM batch_results r WHERE r.batch_id = b.id) AS compacted
         FROM batches b
         LEFT JOIN files o ON o.id = b.output_file_id
         LEFT JOIN files e ON e.id = b.error_file_id
        WHERE b.id = $1 FOR UPDATE OF b`,
      [batchId],
    );
    if (
      !batch ||
      batch.compacted ||
      !['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)
    ) {
      return;
    }
    const [sums] = await tx.query(
      `SELECT coalesce(sum(bytes + 1) FILTER (WHERE ok), 0)::bigint AS ok_bytes,
              coalesce(sum(bytes + 1) FILTER (WHERE NOT ok), 0)::bigint AS failed_bytes
         FROM request_results WHERE batch_id = $1`,
      [batchId],
    );
    const indexed =
      Number(sums.ok_bytes) === Number(batch.output_bytes ?? 0) &&
      Number(sums.failed_bytes) === Number(batch.error_bytes ?? 0);
    // The statement joins the batch's rows with themselves. request_results grows from nothing
    // within one batch, so when a batch ends its statistics may say it has about no rows, and
    // a planner that believes so picks a nested loop: every row against every row (quadratic;
    // see WorkRepository.outputs). A hash join is linear whatever the statistics say.
    await tx.query('SET LOCAL enable_nestloop = off');
    await tx.query(COMPACT_SQL, [
      batchId,
      indexed,
      UNEXECUTED('batch_expired'),
      UNEXECUTED('batch_cancelled'),
    ]);
    await tx.query(`INSERT INTO batch_results (batch_id, indexed, compacted_at) VALUES ($1, $2, now())`, [
      batchId,
      indexed,
    ]);
  });
}

const ROW_COLUMNS = `line, custom_id, ok, bytes, file_offset`;

function toRow(r: Record<string, unknown>): ResultRow {
  return {
    line: Number(r.line),
    customId: (r.custom_id as string | null) ?? null,
    ok: r.ok as boolean,
    bytes: Number(r.bytes),
    output: (r.output as string | null | undefined) ?? null,
    fileOffset: r.file_offset === null || r.file_offset === undefined ? null : Number(r.file_offset),
  };
}

export class ResultIndex {
  constructor(private readonly db: DataSource) {}

  compact(batchId: string): Promise<void> {
    return compactResults(this.db, batchId);
  }

  /** null: not compacted (running, or ended a moment ago); else whether the rows index the files. */
  async state(batchId: string, db: Db = this.db): Promise<{ indexed: boolean } | null> {
    const [row] = await db.query(`SELECT indexed FROM batch_results WHERE batch_id = $1`, [batchId]);
    return row ? { indexed: row.indexed as boolean } : null;
  }

  async hasRows(batchId: string): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM request_results WHERE batch_id = $1 LIMIT 1`, [batchId]);
    return rows.length > 0;
  }

  /** Up to `limit + 1` rows after `afterLine`, in line order, without their lines (see `withLines`). */
  async rows(batchId: string, filter: ResultFilter): Promise<ResultRow[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT ${ROW_COLUMNS} FROM request_results
        WHERE batch_id = $1 AND line > $2 AND ($3::boolean IS NULL OR ok = $3) AND ($4::text IS NULL OR custom_id = $4)
        ORDER BY line LIMIT $5`,
      [batchId, filter.afterLine, filter.ok ?? null, filter.customId ?? null, filter.limit + 1],
    );
    return rows.map(toRow);
  }

  /** The same rows with their lines (where the rows still have them), read in pages of bounded size. */
  async withLines(batchId: string, rows: readonly ResultRow[]): Promise<ResultRow[]> {
    if (rows.length === 0) return [];
    const found: Record<string, unknown>[] = await this.db.query(
      `SELECT ${ROW_COLUMNS}, output FROM request_results WHERE batch_id = $1 AND line = ANY($2::int[]) ORDER BY line`,
      [batchId, rows.map((r) => r.line)],
    );
    return found.map(toRow);
  }

  /** The line numbers and custom_ids of the requests with one of `outcomes` (a compacted batch). */
  async linesWith(
    batchId: string,
    outcomes: readonly Outcome[],
  ): Promise<{ line: number; customId: string }[]> {
    const rows: { line: number; custom_id: string }[] = await this.db.query(
      `SELECT line, custom_id FROM request_results WHERE batch_id = $1 AND outcome = ANY($2) ORDER BY line`,
      [batchId, outcomes],
    );
    return rows.map((r) => ({ line: Number(r.line), customId: r.custom_id }));
  }

  /**
   * Removes the rows of ended batches none of whose files can be read any more (deleted,
   * expired or purged): there is nothing left for them to point into. Returns how many batches.
   */
  async sweepGone(now: Date, limit = 100): Promise<number> {
    const gone = (column: string) =>
      `(b.${column} IS NULL OR EXISTS (SELECT 1 FROM files f WHERE f.id = b.${column}
          AND (f.deleted_at IS NOT NULL OR (f.expires_at IS NOT NULL AND f.expires_at <= $1))))`;
    const batches: { batch_id: string }[] = await this.db.query(
      `SELECT r.batch_id FROM batch_results r JOIN batches b ON b.id = r.batch_id
        WHERE ${gone('output_file_id')} AND ${gone('error_file_id')}
        LIMIT $2`,
      [now, limit],
    );
    for (const { batch_id: id } of batches) {
      await this.db.transaction(async (tx) => {
        await tx.query(`DELETE FROM request_results WHERE batch_id = $1`, [id]);
        await tx.query(`DELETE FROM batch_results WHERE batch_id = $1`, [id]);
      });
    }
    return batches.length;
  }
}
