import type { BargeConfig } from '../config/config';
import { invalidRequest, tooLarge } from '../common/openai-error';
import { requireStorable } from '../common/tenant-input';
import { echo } from '../common/text';
import { UPLOADABLE_PURPOSES, UploadablePurpose } from '../database/entities/file.entity';
import type { JsonlVerdict } from './jsonl-check';

/** OpenAI's bounds for `expires_after[seconds]`: one hour to thirty days. */
const MIN_EXPIRES_AFTER = 3600;
const MAX_EXPIRES_AFTER = 30 * 24 * 3600;
const MAX_FILENAME_LENGTH = 255;

type Limits = BargeConfig['limits'];

/** What the form says about the file once every field has been read and checked. */
export interface UploadDetails {
  purpose: UploadablePurpose;
  filename: string;
  createdAt: Date;
  /** From `expires_after`; undefined leaves the purpose's default to FileStore. */
  expiresAt?: Date;
}

/**
 * The fields of a `POST /v1/files` form, checked as they arrive. Multipart fields come in the
 * client's order: openai-node sends the file part before `purpose`, curl users send either.
 * Whatever can be checked before the file streams is checked then (so a bad purpose costs no
 * upload); the rest is checked by `complete`, after the upload, which is then discarded.
 */
export class UploadForm {
  private purpose?: UploadablePurpose;
  private anchor?: string;
  private seconds?: number;
  private readonly seen = new Set<string>();

  constructor(private readonly limits: Limits) {}

  /** Takes one text field; unknown fields are ignored, as more lenient clients expect. */
  setField(name: string, value: string): void {
    if (this.seen.has(name))
      throw invalidRequest(`Duplicate parameter: '${echo(name)}'.`, name, 'invalid_value');
    this.seen.add(name);
    if (name === 'purpose') this.purpose = parsePurpose(requireStorable(value, name));
    else if (name === 'expires_after[anchor]') this.anchor = parseAnchor(requireStorable(value, name));
    else if (name === 'expires_after[seconds]') this.seconds = parseSeconds(requireStorable(value, name));
  }

  /** The purpose, when the form has named it before the file part. */
  get knownPurpose(): UploadablePurpose | undefined {
    return this.purpose;
  }

  /**
   * The size cap to stream the file under: the purpose's own, or the larger general cap while
   * the purpose is still unknown (then `complete` applies the purpose's cap afterwards).
   */
  streamingCap(): number {
    return this.purpose === 'batch' ? this.limits.maxBatchFileBytes : this.limits.maxFileBytes;
  }

  /** Checks a batch file's name before its bytes stream, when the purpose is already known. */
  checkFilename(filename: string): void {
    if (this.purpose === 'batch') requireJsonlName(filename);
  }

  /** Refuses a batch file at its first line, when the purpose is already known. */
  checkFirstLine(verdict: JsonlVerdict): void {
    if (this.purpose === 'batch' && verdict === 'not_jsonl') requireJsonl(verdict);
  }

  /** Checks the finished upload against the whole form. */
  complete(upload: { filename: string; bytes: number; verdict: JsonlVerdict }): UploadDetails {
    if (!this.purpose) throw invalidRequest("Missing required parameter: 'purpose'.", 'purpose');
    if (this.purpose === 'batch') {
      requireJsonlName(upload.filename);
      if (upload.bytes > this.limits.maxBatchFileBytes) throw batchFileTooLarge(this.limits);
      requireJsonl(upload.verdict);
    }
    const createdAt = new Date();
    return {
      purpose: this.purpose,
      filename: upload.filename,
      createdAt,
      expiresAt: this.expiresAt(createdAt),
    };
  }

  /** Undefined when the form sets no expiry: the store then applies the purpose's default. */
  private expiresAt(createdAt: Date): Date | undefined {
    if (this.anchor !== undefined && this.seconds === undefined) {
      throw invalidRequest("Missing required parameter: 'expires_after[seconds]'.", 'expires_after[seconds]');
    }
    if (this.seconds !== undefined && this.anchor === undefined) {
      throw invalidRequest("Missing required parameter: 'expires_after[anchor]'.", 'expires_after[anchor]');
    }
    return this.seconds === undefined ? undefined : new Date(createdAt.getTime() + this.seconds * 1000);
  }
}

/** A file as too large for its purpose: 413 with `file_too_large`. */
export function fileTooLarge(maxBytes: number, purpose: UploadablePurpose | undefined) {
  return tooLarge(
    `File is too large: the maximum size${purpose ? ` for purpose '${purpose}'` : ''} is ${maxBytes} bytes.`,
    'file',
  );
}

const batchFileTooLarge = (limits: Limits) => fileTooLarge(limits.maxBatchFileBytes, 'batch');

function parsePurpose(value: string): UploadablePurpose {
  if ((UPLOADABLE_PURPOSES as readonly string[]).includes(value)) return value as UploadablePurpose;
  const supported = UPLOADABLE_PURPOSES.map((p) => `'${p}'`).join(', ');
  throw invalidRequest(
    `Invalid value for 'purpose': '${echo(value)}'. Supported values are: ${supported}.`,
    'purpose',
    'invalid_value',
  );
}

function parseAnchor(value: string): string {
  if (value === 'created_at') return value;
  throw invalidRequest(
    `Invalid value for 'expires_after[anchor]': '${echo(value)}'. Supported values are: 'created_at'.`,
    'expires_after[anchor]',
    'invalid_value',
  );
}

function parseSeconds(value: string): number {
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(seconds >= MIN_EXPIRES_AFTER && seconds <= MAX_EXPIRES_AFTER)) {
    throw invalidRequest(
      `Invalid value for 'expires_after[seconds]': '${echo(value)}'. Expected an integer between ${MIN_EXPIRES_AFTER} and ${MAX_EXPIRES_AFTER}.`,
      'expires_after[seconds]',
      'invalid_value',
    );
  }
  return seconds;
}

function requireJsonlName(filename: string): void {
  if (!filename.toLowerCase().endsWith('.jsonl')) {
    throw invalidRequest(
      `Invalid file name '${echo(filename)}': files with purpose 'batch' must be JSONL files ending in '.jsonl'.`,
      'file',
      'invalid_file_format',
    );
  }
}

function requireJsonl(verdict: JsonlVerdict): void {
  if (verdict === 'empty') {
    throw invalidRequest(
      "The file is empty: a 'batch' file needs one request per line.",
      'file',
      'empty_file',
    );
  }
  if (verdict !== 'jsonl') {
    throw invalidRequest(
      "The file is not valid JSONL: the first line of a 'batch' file must be a JSON object.",
      'file',
      'invalid_file_format',
    );
  }
}

/**
 * A name that is safe to store and to echo in headers: no directories (`../x`, `C:\x`), no
 * control or bidirectional-override characters, no unpaired surrogates (Postgres cannot store
 * them), at most 255 characters with the extension kept (so `.jsonl` survives truncation).
 */
export function sanitizeFilename(raw: string): string {
  const base = raw.split(/[/\\]/).pop() ?? '';
  let name = base
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '')
    .trim();
  name = name.replace(/^\.+$/, '');
  if (name === '') return 'upload';
  const chars = Array.from(name);
  if (chars.length <= MAX_FILENAME_LENGTH) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? Array.from(name.slice(dot)) : [];
  if (ext.length === 0 || ext.length > 16) return chars.slice(0, MAX_FILENAME_LENGTH).join('');
  return chars.slice(0, MAX_FILENAME_LENGTH - ext.length).join('') + ext.join('');
}
