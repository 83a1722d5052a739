import { OpenAIError } from '../common/openai-error';

/** Inclusive byte positions, as in a Content-Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeRequest =
  { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * Interprets a Range header (RFC 9110 §14) against a representation of `size` bytes. One range
 * is served (`bytes=a-b`, `a-`, `-n`); a header we cannot or need not honour (another unit,
 * several ranges, bad syntax) is ignored and the whole file is sent, as the RFC allows.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match) return { kind: 'full' };
  const [, first, last] = match;
  if (first === '' && last === '') return { kind: 'full' };

  if (first === '') {
    // Suffix range: the last n bytes.
    const n = Number(last);
    if (!Number.isSafeInteger(n)) return { kind: 'full' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  const lastByte = last === '' ? Infinity : Number(last);
  // `bytes=5-2` is malformed (ignored); `bytes=500-` on a 73-byte file is well formed but past the end.
  if (!Number.isSafeInteger(start) || !(lastByte >= start)) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(lastByte, size - 1) } };
}

/** 416, with the Content-Range a client needs to learn the real size. */
export const rangeNotSatisfiable = (size: number) =>
  new OpenAIError(
    416,
    `The requested range is not satisfiable: the file has ${size} bytes.`,
    'invalid_request_error',
    'range',
    'range_not_satisfiable',
    { 'Content-Range': `bytes */${size}` },
  );
