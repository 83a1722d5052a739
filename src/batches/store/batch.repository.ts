import type { DataSource, EntityManager } from 'typeorm';
import { fetchPage, Page, PageQuery } from '../../common/pagination';
import { BatchErrorItem, BatchRecord, BatchStatus } from '../../database/entities/batch.entity';

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
  ok: boolean;
  /** The finished output-file line (JSON, no trailing newline). */
  output: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

const NON_TERMINAL: BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/**
 * All SQL about batches, shared by the API and the worker's activities. Postgres is the truth:
 * status changes are conditional updates, so replayed or racing calls are harmless.
 */
export class BatchRepository {
  constructor(private readonly db: DataSource | EntityManager) {}

  private get repo() {
    return this.db.getRepository(BatchRecord);
  }

  /**
   * Writes a new batch while holding its input file's row (FOR SHARE), so a concurrent delete
   * of that file either happens first (and the insert fails) or sees this batch as a reader.
   */
  async insertReading(batch: BatchRecord): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query(
        `SELECT 1 FROM files WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL FOR SHARE`,
        [batch.inputFileId, batch.tenantId],
      );
      if (rows.length === 0) return false;
      await tx.getRepository(BatchRecord).insert(batch);
      return true;
    });
  }

  async remove(id: string): Promise<void> {
    await this.repo.delete({ id });
  }

  find(id: string): Promise<BatchRecord | null> {
    return this.repo.findOneBy({ id });
  }

  findForTenant(tenantId: string, id: string): Promise<BatchRecord | null> {
    return this.repo.findOneBy({ id, tenantId });
  }

  findByIdempotencyKey(tenantId: string, idempotencyKey: string): Promise<BatchRecord | null> {
    return this.repo.findOneBy({ tenantId, idempotencyKey });
  }

  /** One page of a tenant's batches (keyset pagination, see common/pagination). */
  list(tenantId: string, page: PageQuery): Promise<Page<BatchRecord>> {
    return fetchPage(
      this.repo.createQueryBuilder('b').where('b.tenant_id = :tenantId', { tenantId }),
      page,
      tenantId,
    );
  }

  /** validating -> in_progress. False when the batch has left `validating` (e.g. it is being cancelled). */
  async markInProgress(id: string, total: number, model: string | null): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE batches SET status = 'in_progress', in_progress_at = now(), request_total = $2, model = $3
        WHERE id = $1 AND status = 'validating' RETURNING id`,
      [id, total, model],
    );
    return rows[0].length > 0;
  }

  async markFailed(id: string, errors: BatchErrorItem[], total: number): Promise<void> {
    await this.db.query(
      `UPDATE batches SET status = 'failed', failed_at = now(), errors = $2, request_total = $3
        WHERE id = $1 AND status IN ('validating', 'cancelling')`,
      [id, JSON.stringify({ data: errors }), total],
    );
  }

  /** Any of `from` -> cancelling. Returns the batch as it is afterwards. */
  async markCancelling(
    id: string,
    from: BatchStatus[] = ['validating', 'in_progress'],
  ): Promise<BatchRecord | null> {
    await this.db.query(
      `UPDATE batches SET status = 'cancelling', cancelling_at = now() WHERE id = $1 AND status = ANY($2)`,
      [id, from],
    );
    return this.find(id);
  }

  async markFinalizing(id: string): Promise<void> {
    await this.db.query(
      `UPDATE batches SET status = 'finalizing', finalizing_at = now() WHERE id = $1 AND status = 'in_progress'`,
      [id],
    );
  }

  /** The terminal transition, with the output and error files. */
  async markEnded(
    id: string,
    status: 'completed' | 'cancelled' | 'expired',
    files: { outputFileId: string | null; errorFileId: string | null },
  ): Promise<void> {
    const stamp = { completed: 'completed_at', cancelled: 'cancelled_at', expired: 'expired_at' }[status];
    await this.db.query(
      `UPDATE batches SET status = $2, ${stamp} = now(), output_file_id = $3, error_file_id = $4
        WHERE id = $1 AND status = ANY($5)`,
      [id, status, files.outputFileId, files.errorFileId, NON_TERMINAL],
    );
  }

  /** Validation's chunk table for the batch; a retried validation replaces the earlier one. */
  async replaceChunks(batchId: string, chunks: ChunkRange[]): Promise<void> {
    await this.db.query(`DELETE FROM batch_chunks WHERE batch_id = $1`, [batchId]);
    if (chunks.length === 0) return;
    await this.db.query(
      `INSERT INTO batch_chunks (batch_id, idx, first_line, line_count, request_count, byte_start, byte_end)
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
  }

  async chunk(batchId: string, idx: number): Promise<ChunkRange> {
    const rows = await this.db.query(
      `SELECT idx, first_line, line_count, request_count, byte_start, byte_end FROM batch_chunks WHERE batch_id = $1 AND idx = $2`,
      [batchId, idx],
    );
    if (rows.length === 0) throw new Error(`batch ${batchId} has no chunk ${idx}`);
    return toChunk(rows[0]);
  }

  async chunks(batchId: string): Promise<ChunkRange[]> {
    const rows = await this.db.query(
      `SELECT idx, first_line, line_count, request_count, byte_start, byte_end FROM batch_chunks WHERE batch_id = $1 ORDER BY idx`,
      [batchId],
    );
    return rows.map(toChunk);
  }

  /** Lines in [from, to) that already have a final outcome. */
  async answeredLines(batchId: string, from: number, to: number): Promise<Set<number>> {
    const rows: { line: number }[] = await this.db.query(
      `SELECT line FROM request_results WHERE batch_id = $1 AND line >= $2 AND line < $3`,
      [batchId, from, to],
    );
    return new Set(rows.map((r) => r.line));
  }

  /**
   * Records outcomes exactly once: a line that already has one is skipped, and only rows
   * actually inserted move the batch's counters and usage (all in one statement).
   */
  async recordOutcomes(batchId: string, outcomes: RequestOutcome[]): Promise<number> {
    if (outcomes.length === 0) return 0;
    const rows: { inserted: number }[] = await this.db.query(
      `WITH input AS (
         SELECT * FROM unnest($2::int[], $3::bool[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
           AS t(line, ok, output, input_tokens, cached_tokens, output_tokens, reasoning_tokens)
       ), ins AS (
         INSERT INTO request_results (batch_id, line, ok, output)
         SELECT $1, line, ok, output FROM input
         -- A straggler finishing after the batch ended must not change it.
         WHERE EXISTS (SELECT 1 FROM batches WHERE id = $1 AND status IN ('in_progress', 'cancelling', 'finalizing'))
         ON CONFLICT (batch_id, line) DO NOTHING
         RETURNING line
       ), added AS (
         SELECT i.* FROM input i JOIN ins USING (line)
       ), upd AS (
         UPDATE batches SET
           request_completed = request_completed + (SELECT count(*) FROM added WHERE ok),
           request_failed = request_failed + (SELECT count(*) FROM added WHERE NOT ok),
           input_tokens = input_tokens + (SELECT coalesce(sum(input_tokens), 0) FROM added),
           cached_tokens = cached_tokens + (SELECT coalesce(sum(cached_tokens), 0) FROM added),
           output_tokens = output_tokens + (SELECT coalesce(sum(output_tokens), 0) FROM added),
           reasoning_tokens = reasoning_tokens + (SELECT coalesce(sum(reasoning_tokens), 0) FROM added)
         WHERE id = $1
       )
       SELECT count(*)::int AS inserted FROM added`,
      [
        batchId,
        outcomes.map((o) => o.line),
        outcomes.map((o) => o.ok),
        outcomes.map((o) => o.output),
        outcomes.map((o) => o.inputTokens),
        outcomes.map((o) => o.cachedTokens),
        outcomes.map((o) => o.outputTokens),
        outcomes.map((o) => o.reasoningTokens),
      ],
    );
    return rows[0].inserted;
  }

  /** Recorded output lines, in line order, `pageSize` rows per query (keyset pages, flat memory). */
  async *outputs(batchId: string, ok: boolean, pageSize = 2_000): AsyncGenerator<string> {
    let after = 0;
    for (;;) {
      const rows: { line: number; output: string }[] = await this.db.query(
        `SELECT line, output FROM request_results WHERE batch_id = $1 AND ok = $2 AND line > $3 ORDER BY line LIMIT $4`,
        [batchId, ok, after, pageSize],
      );
      for (const row of rows) yield row.output;
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1].line;
    }
  }

  /** The input file's object key. Deleted files count too: an active batch keeps reading its input. */
  async inputObjectKey(batch: BatchRecord): Promise<string> {
    const rows: { object_key: string }[] = await this.db.query(`SELECT object_key FROM files WHERE id = $1`, [
      batch.inputFileId,
    ]);
    if (rows.length === 0) throw new Error(`input file ${batch.inputFileId} of ${batch.id} has no row`);
    return rows[0].object_key;
  }

  /** Per-request rows are only needed until the output files exist. */
  async deleteWorkingData(batchId: string): Promise<void> {
    await this.db.query(`DELETE FROM request_results WHERE batch_id = $1`, [batchId]);
    await this.db.query(`DELETE FROM batch_chunks WHERE batch_id = $1`, [batchId]);
  }

  async countOutcomes(batchId: string): Promise<{ ok: number; failed: number }> {
    const [row] = await this.db.query(
      `SELECT count(*) FILTER (WHERE ok)::int AS ok, count(*) FILTER (WHERE NOT ok)::int AS failed
         FROM request_results WHERE batch_id = $1`,
      [batchId],
    );
    return row;
  }
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
