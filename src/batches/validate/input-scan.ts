import { createHash } from 'node:crypto';
import type { BatchEndpoint } from '../../common/endpoints';
import { echo } from '../../common/text';
import type { BatchErrorItem } from '../../database/entities/batch.entity';
import type { ChunkRange } from '../store/work.repository';
import { estimateTokens } from '../../upstreams/token-estimate';
import { validateLine } from './input-validation';
import { isBlank, type JsonlLine } from './jsonl-lines';

/**
 * Validation of a whole input file as plain code: each line is checked on its own
 * (validateLine), then against the others (unique custom_id, one model per batch, the request
 * cap), while the chunk plan is cut. The activity only feeds it lines and stores the verdict.
 */

export interface ScanLimits {
  maxRequests: number;
  /** A chunk is cut at this many requests... */
  chunkMaxRequests: number;
  /** ...or once it spans this many bytes, whichever comes first (a chunk is read into memory whole). */
  chunkMaxBytes: number;
  /** At most this many errors are listed, and at most this many bytes of them... */
  maxListedErrors: number;
  maxErrorBytes: number;
}

export const DEFAULT_ERROR_LIMITS = { maxListedErrors: 100, maxErrorBytes: 64 * 1024 } as const;

export type ScanResult =
  | {
      ok: true;
      total: number;
      chunks: ChunkRange[];
      model: string | null;
      /** The requests' token estimate (as the gateway's limits estimate), for the enqueued-token quota. */
      estimatedTokens: number;
    }
  | { ok: false; total: number; errors: BatchErrorItem[] };

/** Whether the batch's model can be served (the gateway's routing answers it). */
export type ModelCheck = (model: string) => { ok: boolean; reason?: string };

/** Errors up to a count and a byte budget; the rest are counted in one closing entry. */
export class ErrorList {
  private readonly items: BatchErrorItem[] = [];
  private bytes = 0;
  private hidden = 0;

  constructor(private readonly limits: Pick<ScanLimits, 'maxListedErrors' | 'maxErrorBytes'>) {}

  add(error: BatchErrorItem): void {
    const size = Buffer.byteLength(JSON.stringify(error));
    if (this.items.length < this.limits.maxListedErrors && this.bytes + size <= this.limits.maxErrorBytes) {
      this.items.push(error);
      this.bytes += size;
    } else {
      this.hidden++;
    }
  }

  get count(): number {
    return this.items.length + this.hidden;
  }

  finish(): BatchErrorItem[] {
    if (this.hidden === 0) return [...this.items];
    const message = `${this.hidden} more error${this.hidden === 1 ? ' was' : 's were'} found and not listed.`;
    return [...this.items, { code: 'too_many_errors', message, param: null, line: null }];
  }
}

/** Cuts chunks of consecutive requests by count and by bytes. Blank lines join the next chunk. */
export class ChunkPlanner {
  readonly chunks: ChunkRange[] = [];
  private open: ChunkRange | undefined;

  constructor(private readonly limits: Pick<ScanLimits, 'chunkMaxRequests' | 'chunkMaxBytes'>) {}

  add(line: Pick<JsonlLine, 'line' | 'start' | 'end'>): void {
    if (this.open && line.end - this.open.byteStart > this.limits.chunkMaxBytes) this.close();
    this.open ??= {
      idx: this.chunks.length,
      firstLine: line.line,
      lineCount: 0,
      requestCount: 0,
      byteStart: line.start,
      byteEnd: line.end,
    };
    this.open.requestCount++;
    this.open.lineCount = line.line - this.open.firstLine + 1;
    this.open.byteEnd = line.end;
    if (this.open.requestCount >= this.limits.chunkMaxRequests) this.close();
  }

  finish(): ChunkRange[] {
    this.close();
    return this.chunks;
  }

  private close(): void {
    if (this.open) this.chunks.push(this.open);
    this.open = undefined;
  }
}

/** 96 bits of a custom_id: duplicates are found in bounded memory whatever the ids' length. */
const idKey = (customId: string): string =>
  createHash('sha256').update(customId).digest().subarray(0, 12).toString('latin1');

export class InputScan {
  private readonly errors: ErrorList;
  private readonly planner: ChunkPlanner;
  private readonly seen = new Set<string>();
  private total = 0;
  private tokens = 0;
  private model: string | null = null;
  private modelLine = 0;

  constructor(
    private readonly endpoint: BatchEndpoint,
    private readonly limits: ScanLimits,
    private readonly checkModel: ModelCheck,
  ) {
    this.errors = new ErrorList(limits);
    this.planner = new ChunkPlanner(limits);
  }

  get requests(): number {
    return this.total;
  }

  add(line: JsonlLine): void {
    if (isBlank(line.bytes)) return;
    this.total++;
    if (this.total > this.limits.maxRequests) return; // counted, reported once at the end
    const checked = validateLine(line.bytes.toString('utf8'), line.line, this.endpoint);
    if ('error' in checked) {
      this.errors.add(checked.error);
      return;
    }
    const { customId, model } = checked.request;
    const key = idKey(customId);
    if (this.seen.has(key)) {
      this.errors.add({
        code: 'duplicate_custom_id',
        message: `The custom_id '${echo(customId)}' appears more than once; each must be unique in the file.`,
        param: 'custom_id',
        line: line.line,
      });
      return;
    }
    this.seen.add(key);
    if (this.model === null) {
      this.model = model;
      this.modelLine = line.line;
    } else if (model !== this.model) {
      this.errors.add({
        code: 'mismatched_model',
        message: `The model '${echo(model)}' differs from '${echo(this.model)}' (line ${this.modelLine}); a batch uses one model.`,
        param: 'body.model',
        line: line.line,
      });
      return;
    }
    this.tokens += estimateTokens(checked.request.body);
    this.planner.add(line);
  }

  /** The file could not be split into lines past `line` (a line over the size cap). */
  lineTooLong(line: number, maxLineBytes: number): void {
    this.errors.add({
      code: 'line_too_large',
      message: `Line ${line} is longer than ${maxLineBytes} bytes.`,
      param: null,
      line,
    });
  }

  /** A problem with the file as a whole (unreadable, too large). */
  fileError(code: string, message: string): void {
    this.errors.add({ code, message, param: 'input_file_id', line: null });
  }

  finish(): ScanResult {
    if (this.total === 0 && this.errors.count === 0) {
      this.fileError('empty_file', 'The input file has no requests.');
    }
    if (this.total > this.limits.maxRequests) {
      this.fileError(
        'too_many_requests_in_batch',
        `The input file has ${this.total} requests; a batch may have at most ${this.limits.maxRequests}.`,
      );
    }
    if (this.model !== null) {
      const route = this.checkModel(this.model);
      if (!route.ok) {
        this.errors.add({
          code: 'model_not_found',
          message:
            route.reason ?? `The model '${echo(this.model)}' is not served by any configured upstream.`,
          param: 'body.model',
          line: this.modelLine,
        });
      }
    }
    if (this.errors.count > 0) return { ok: false, total: this.total, errors: this.errors.finish() };
    return {
      ok: true,
      total: this.total,
      chunks: this.planner.finish(),
      model: this.model,
      estimatedTokens: this.tokens,
    };
  }
}
