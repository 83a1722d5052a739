import type { ObjectStorage } from '../../storage/object-storage';
import type { ChunkRange } from '../store/work.repository';
import { isBlank, jsonlLines } from '../validate/jsonl-lines';

/** A request of a chunk, as read back from the input file. */
export interface ChunkRequest {
  line: number;
  customId: string;
  body: Record<string, unknown>;
}

/** A line of a chunk that no longer reads as a request (validation passed it; the bytes changed?). */
export interface UnreadableLine {
  line: number;
  customId: string;
  reason: string;
}

export interface ChunkContents {
  requests: ChunkRequest[];
  unreadable: UnreadableLine[];
}

/**
 * Reads one chunk's requests back from the input file by byte range, skipping the lines in
 * `skip` (already answered). Validation checked every line; a line that fails anyway is
 * returned as unreadable, to become that request's error line, never the chunk's failure.
 */
export async function readChunk(
  storage: ObjectStorage,
  objectKey: string,
  chunk: ChunkRange,
  skip: ReadonlySet<number>,
): Promise<ChunkContents> {
  const contents: ChunkContents = { requests: [], unreadable: [] };
  if (chunk.byteEnd <= chunk.byteStart) return contents;
  const stream = await storage.getStream(objectKey, { start: chunk.byteStart, end: chunk.byteEnd - 1 });
  for await (const { line, bytes } of jsonlLines(stream, {
    firstLine: chunk.firstLine,
    offset: chunk.byteStart,
  })) {
    if (skip.has(line) || isBlank(bytes)) continue;
    let parsed: { custom_id?: unknown; body?: unknown };
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      contents.unreadable.push({ line, customId: '', reason: (error as Error).message });
      continue;
    }
    const customId = typeof parsed?.custom_id === 'string' ? parsed.custom_id : '';
    const body = parsed?.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      contents.unreadable.push({ line, customId, reason: 'the line has no request body' });
      continue;
    }
    contents.requests.push({ line, customId, body: body as Record<string, unknown> });
  }
  return contents;
}
