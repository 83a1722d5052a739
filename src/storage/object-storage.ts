import type { Readable } from 'node:stream';

/** Where file bytes live. The API, the activities and the tests use only this interface. */
export interface ObjectStorage {
  /** Creates the bucket if it does not exist. */
  ensureBucket(): Promise<void>;
  /**
   * Streams `source` into `key` without holding more than one part in memory. Rejects, leaving
   * nothing behind, when the source fails or exceeds `maxBytes`.
   */
  putStream(
    key: string,
    source: AsyncIterable<Buffer | string>,
    options?: PutOptions,
  ): Promise<{ bytes: number }>;
  /** Reads `key`, or the inclusive byte range [start, end] of it. */
  getStream(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Size of `key`, or null when it does not exist. */
  size(key: string): Promise<number | null>;
  remove(key: string): Promise<void>;
  /** Keys under `prefix` last modified before `olderThan` (for orphan sweeps). */
  listOlderThan(prefix: string, olderThan: Date): AsyncIterable<string>;
  /** Aborts multipart uploads under `prefix` begun before `olderThan`; returns how many. */
  sweepIncompleteUploads(prefix: string, olderThan: Date): Promise<number>;
  /** Throws when the storage is unreachable. */
  ping(): Promise<void>;
}

export interface PutOptions {
  contentType?: string;
  maxBytes?: number;
}

export class ObjectTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`object exceeds ${maxBytes} bytes`);
  }
}

export const OBJECT_STORAGE = Symbol('ObjectStorage');
