/** One physical line of a JSONL stream, with its byte span so chunks can be re-read by range. */
export interface JsonlLine {
  /** 1-based physical line number. */
  line: number;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line's newline (or end of input). */
  end: number;
  /**
   * The line's bytes without the newline (and without a trailing \r). For the line at byte
   * offset 0 of a file, without a leading UTF-8 byte order mark either (`start` stays 0).
   */
  bytes: Buffer;
}

/**
 * The longest request line a batch file may have, in bytes (README: validation limits). Longer
 * lines are refused with `line_too_large`, so a file without newlines cannot exhaust memory.
 */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Bytes a raw line may carry beyond the limit before it is shaped: a BOM and a \r. */
const SHAPING_SLACK = BOM.length + 1;

/**
 * Splits a byte stream into lines without decoding it as a whole: memory stays at one
 * line plus one read buffer. Lines longer than `maxLineBytes` raise LineTooLongError.
 * `offset` is where `source` starts in the file: a BOM is only stripped at offset 0, the same
 * rule the upload's first-line check follows, so a ranged re-read of the first chunk sees the
 * same line 1 as validation did.
 */
export async function* jsonlLines(
  source: AsyncIterable<Buffer>,
  options: { firstLine?: number; offset?: number; maxLineBytes?: number } = {},
): AsyncGenerator<JsonlLine> {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  let line = options.firstLine ?? 1;
  let offset = options.offset ?? 0;
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lineStart = offset;
  const shape = (bytes: Buffer, start: number) => stripCr(start === 0 ? stripBom(bytes) : bytes);

  for await (const chunk of source) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl === -1) break;
      const piece = chunk.subarray(from, nl);
      if (carryBytes + piece.length > maxLineBytes + SHAPING_SLACK)
        throw new LineTooLongError(line, maxLineBytes);
      const bytes = carryBytes ? Buffer.concat([...carry, piece], carryBytes + piece.length) : piece;
      carry = [];
      carryBytes = 0;
      const end = offset + nl + 1;
      const shaped = shape(bytes, lineStart);
      if (shaped.length > maxLineBytes) throw new LineTooLongError(line, maxLineBytes);
      yield { line, start: lineStart, end, bytes: shaped };
      line++;
      lineStart = end;
      from = nl + 1;
    }
    if (from < chunk.length) {
      carry.push(chunk.subarray(from));
      carryBytes += chunk.length - from;
      // The exact check comes once the line is complete and shaped.
      if (carryBytes > maxLineBytes + SHAPING_SLACK) throw new LineTooLongError(line, maxLineBytes);
    }
    offset += chunk.length;
  }
  if (carryBytes > 0) {
    const shaped = shape(Buffer.concat(carry, carryBytes), lineStart);
    if (shaped.length > maxLineBytes) throw new LineTooLongError(line, maxLineBytes);
    yield { line, start: lineStart, end: offset, bytes: shaped };
  }
}

function stripCr(bytes: Buffer): Buffer {
  return bytes.length && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
}

function stripBom(bytes: Buffer): Buffer {
  return bytes.subarray(0, 3).equals(BOM) ? bytes.subarray(3) : bytes;
}

export function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

export class LineTooLongError extends Error {
  constructor(
    readonly line: number,
    readonly maxLineBytes: number,
  ) {
    super(`Line ${line} is longer than ${maxLineBytes} bytes, the limit for one request.`);
  }
}
