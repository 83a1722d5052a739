import type { ChunkRange } from '../store/batch.repository';
import { isBlank, jsonlLines } from '../validate/jsonl-lines';
import type { ObjectStorage } from '../../storage/object-storage';

export interface ChunkRequest {
  line: number;
  customId: string;
  body: Record<string, unknown>;
}

/**
 * Reads one chunk's requests back from the input file by byte range (validation already
 * checked every line), skipping lines in `skip`.
 */
export async function readChunk(
  storage: ObjectStorage,
  objectKey: string,
  chunk: ChunkRange,
  skip: Set<number>,
): Promise<ChunkRequest[]> {
  const requests: ChunkRequest[] = [];
  if (chunk.byteEnd <= chunk.byteStart) return requests;
  const stream = await storage.getStream(objectKey, { start: chunk.byteStart, end: chunk.byteEnd - 1 });
  for await (const { line, bytes } of jsonlLines(stream, {
    firstLine: chunk.firstLine,
    offset: chunk.byteStart,
  })) {
    if (skip.has(line) || isBlank(bytes)) continue;
    const parsed = JSON.parse(bytes.toString('utf8')) as { custom_id: string; body: Record<string, unknown> };
    requests.push({ line, customId: parsed.custom_id, body: parsed.body });
  }
  return requests;
}
