import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { invalidRequest, notFound, OpenAIError, serviceUnavailable } from '../../common/openai-error';
import { single } from '../../common/pagination';
import { echo } from '../../common/text';
import { TERMINAL_STATUSES, type BatchRecord } from '../../database/entities/batch.entity';
import { OBJECT_STORAGE, type ObjectStorage } from '../../storage/object-storage';
import { ResultIndex, type ResultFilter, type ResultRow } from '../store/result-index';
import { BatchRepository } from '../store/batch.repository';

/**
 * GET /v1/batches/{id}/results: every outcome recorded so far, as the lines of the output and
 * error files (OpenAI's format), in input order, while the batch runs and after it ended.
 * While it runs the lines come from Postgres (request_results); after it ended from the
 * committed files, by ranged reads at the offsets the slimmed rows keep (result-index.ts).
 */

export const DEFAULT_RESULTS_LIMIT = 1_000;
export const MAX_RESULTS_LIMIT = 10_000;
/** Lines read from a file in one ranged read at most (a longer line is a read of its own). */
const READ_BYTES = 8 * 1024 * 1024;
/** Rows whose lines are read from Postgres in one query at most. */
const PAGE_ROWS = 2_000;

export type ResultsQuery = ResultFilter;

export interface ResultsPage {
  /** The batch has not ended: more outcomes may come. */
  incomplete: boolean;
  /** More results follow this page (page on with after_line = lastLine). */
  hasMore: boolean;
  /** Input line of the last result in this page, or null when it is empty. */
  lastLine: number | null;
  /** The lines, in input order. */
  lines: AsyncIterable<string>;
}

const gone = (id: string) =>
  new OpenAIError(
    410,
    `The results of batch ${id} are no longer available: its output and error files were deleted or have expired.`,
    'invalid_request_error',
    null,
    'results_expired',
  );

/** Parses status, custom_id, after_line and limit. */
export function parseResultsQuery(query: Record<string, unknown>): ResultsQuery {
  const status = single(query, 'status');
  const customId = single(query, 'custom_id');
  const afterLine = single(query, 'after_line');
  const limit = single(query, 'limit');
  if (status !== undefined && status !== 'completed' && status !== 'failed') {
    throw invalidRequest(
      `Invalid 'status': expected 'completed' or 'failed', but got '${echo(status)}' instead.`,
      'status',
      'invalid_value',
    );
  }
  const integer = (raw: string | undefined, name: string, min: number, max: number, fallback: number) => {
    if (raw === undefined) return fallback;
    const n = /^\d{1,10}$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw invalidRequest(
        `Invalid '${name}': expected an integer from ${min} to ${max}, but got '${echo(raw)}' instead.`,
        name,
        'invalid_value',
      );
    }
    return n;
  };
  return {
    ok: status === undefined ? undefined : status === 'completed',
    customId: customId === undefined || customId === '' ? undefined : customId,
    afterLine: integer(afterLine, 'after_line', 0, 2 ** 31 - 1, 0),
    limit: integer(limit, 'limit', 1, MAX_RESULTS_LIMIT, DEFAULT_RESULTS_LIMIT),
  };
}

@Injectable()
export class BatchResultsService {
  private readonly index: ResultIndex;

  constructor(
    private readonly db: DataSource,
    private readonly batches: BatchRepository,
    @Inject(OBJECT_STORAGE) private readonly storage: ObjectStorage,
  ) {
    this.index = new ResultIndex(db);
  }

  async page(tenantId: string, id: string, query: ResultsQuery): Promise<ResultsPage> {
    const batch = await this.batches.findForTenant(tenantId, id);
    if (!batch) throw notFound(`No such Batch object: ${echo(id)}`, 'batch_id');
    const ended = TERMINAL_STATUSES.includes(batch.status);
    const found = await this.index.rows(batch.id, query);
    const rows = found.slice(0, query.limit);
    if (
      ended &&
      rows.length === 0 &&
      !(await this.index.hasRows(batch.id)) &&
      (batch.outputFileId || batch.errorFileId)
    ) {
      // An ended batch that had results, none of which are indexed: swept, or ended before
      // results were kept.
      throw gone(batch.id);
    }
    const files = ended ? await this.readableFiles(batch) : null;
    return {
      incomplete: !ended,
      hasMore: found.length > query.limit,
      lastLine: rows.length ? rows[rows.length - 1].line : null,
      lines: this.lines(batch, rows, files),
    };
  }

  /** Object keys of the batch's output and error files, 410 when one of them is gone. */
  private async readableFiles(batch: BatchRecord): Promise<{ output?: string; error?: string }> {
    const ids = [batch.outputFileId, batch.errorFileId].filter((f): f is string => f !== null);
    const rows: { id: string; object_key: string; readable: boolean }[] = await this.db.query(
      `SELECT id, object_key, deleted_at IS NULL AND purged_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AS readable
         FROM files WHERE id = ANY($1)`,
      [ids],
    );
    const key = (fileId: string | null) => {
      if (!fileId) return undefined;
      const row = rows.find((r) => r.id === fileId);
      if (!row || !row.readable) throw gone(batch.id);
      return row.object_key;
    };
    return { output: key(batch.outputFileId), error: key(batch.errorFileId) };
  }

  /**
   * The lines of `rows`, in order: from Postgres in pages of bounded size where the rows still
   * hold them, else from the files, a run of adjacent lines per ranged read.
   */
  private async *lines(
    batch: BatchRecord,
    rows: ResultRow[],
    files: { output?: string; error?: string } | null,
  ): AsyncGenerator<string> {
    const readers = {
      ok: new FileLines(this.storage, () => files?.output, batch.id),
      failed: new FileLines(this.storage, () => files?.error, batch.id),
    };
    for (let i = 0; i < rows.length;) {
      // A page: consecutive rows up to READ_BYTES of lines (and at least one row).
      let bytes = rows[i].bytes;
      let j = i + 1;
      while (j < rows.length && j - i < PAGE_ROWS && bytes + rows[j].bytes <= READ_BYTES)
        bytes += rows[j++].bytes;
      const page = await this.index.withLines(batch.id, rows.slice(i, j));
      for (const row of page) {
        if (row.output !== null) {
          yield row.output;
        } else if (row.fileOffset !== null) {
          yield await (row.ok ? readers.ok : readers.failed).line(row, page);
        } else {
          throw serviceUnavailable(`The results of ${batch.id} are being indexed; please retry.`);
        }
      }
      i = j;
    }
  }
}

/**
 * Reads lines of one file at known offsets: the rows of a page that are adjacent in the file
 * are fetched with one ranged read (up to READ_BYTES), then served from memory.
 */
class FileLines {
  private buffer: Buffer | null = null;
  private start = 0;

  constructor(
    private readonly storage: ObjectStorage,
    private readonly key: () => string | undefined,
    private readonly batchId: string,
  ) {}

  async line(row: ResultRow, page: readonly ResultRow[]): Promise<string> {
    const offset = row.fileOffset!;
    if (!this.buffer || offset < this.start || offset + row.bytes > this.start + this.buffer.length) {
      await this.load(row, page);
    }
    return this.buffer!.subarray(offset - this.start, offset - this.start + row.bytes).toString('utf8');
  }

  /** Reads from `row` on, through the following rows of this file in `page` that are adjacent to it. */
  private async load(row: ResultRow, page: readonly ResultRow[]): Promise<void> {
    const key = this.key();
    if (!key) throw gone(this.batchId);
    let end = row.fileOffset! + row.bytes;
    const same = page.filter((r) => r.ok === row.ok && r.fileOffset !== null && r.line > row.line);
    for (const next of same) {
      if (next.fileOffset !== end + 1 || next.fileOffset + next.bytes - row.fileOffset! > READ_BYTES) break;
      end = next.fileOffset + next.bytes;
    }
    const chunks: Buffer[] = [];
    if (end > row.fileOffset!) {
      let stream;
      try {
        stream = await this.storage.getStream(key, { start: row.fileOffset!, end: end - 1 });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'NoSuchKey' || code === 'NotFound') throw gone(this.batchId);
        throw serviceUnavailable('File storage is unavailable right now; please retry.');
      }
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    }
    this.buffer = Buffer.concat(chunks);
    this.start = row.fileOffset!;
  }
}
