/** One physical line of a JSONL stream, with its byte span so chunks can be re-read by range. */
export interface JsonlLine {
  /** 1-based physical line number. */
  line: number;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line's newline (or end of input). */
  end: number;
  /** The line's bytes without the newline (and without a trailing \r). */
  bytes: Buffer;
}

/**
 * Splits a byte stream into lines without decoding it as a whole: memory stays at one
 * line plus one read buffer. Lines longer than `maxLineBytes` raise, so a file without
 * newlines cannot exhaust memory.
 */
export async function* jsonlLines(
  source: AsyncIterable<Buffer>,
  options: { firstLine?: number; offset?: number; maxLineBytes?: number } = {},
): AsyncGenerator<JsonlLine> {
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024 * 1024;
  let line = options.firstLine ?? 1;
  let offset = options.offset ?? 0;
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lineStart = offset;

  for await (const chunk of source) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl === -1) break;
      const piece = chunk.subarray(from, nl);
      const bytes = carryBytes ? Buffer.concat([...carry, piece], carryBytes + piece.length) : piece;
      carry = [];
      carryBytes = 0;
      const end = offset + nl + 1;
      yield { line, start: lineStart, end, bytes: stripCr(bytes) };
      line++;
      lineStart = end;
      from = nl + 1;
    }
    if (from < chunk.length) {
      carry.push(chunk.subarray(from));
      carryBytes += chunk.length - from;
      if (carryBytes > maxLineBytes) throw new LineTooLongError(line, maxLineBytes);
    }
    offset += chunk.length;
  }
  if (carryBytes > 0) {
    yield { line, start: lineStart, end: offset, bytes: stripCr(Buffer.concat(carry, carryBytes)) };
  }
}

function stripCr(bytes: Buffer): Buffer {
  return bytes.length && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
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
    super(`line ${line} is longer than ${maxLineBytes} bytes`);
  }
}
