import type { Readable } from 'node:stream';
import { DataSource, EntityManager, SelectQueryBuilder } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { newId } from '../common/ids';
import { notFound } from '../common/openai-error';
import { echo } from '../common/text';
import { fetchPage, Page, PageQuery } from '../common/pagination';
import { BATCH_STATUSES, TERMINAL_STATUSES } from '../database/entities/batch.entity';
import { FilePurpose, FileRecord } from '../database/entities/file.entity';
import type { ObjectStorage } from '../storage/object-storage';
import type { ByteRange } from './byte-range';

/** An object written to storage whose file row does not exist yet (see `upload`). */
export interface StoredObject {
  id: string;
  tenantId: string;
  objectKey: string;
  bytes: number;
}

export interface FileDetails {
  filename: string;
  purpose: FilePurpose;
  /** Defaults to now. */
  createdAt?: Date;
  /**
   * When the file expires; null: never. Absent: the purpose's default, which is OpenAI's:
   * batch input files after limits.batchFileTtlSeconds (30 days), other files never.
   */
  expiresAt?: Date | null;
}

export interface CreateFileInput extends FileDetails {
  tenantId: string;
  /**
   * A caller-chosen id (`file-...`), for writers that must be idempotent: a retried batch
   * finalize derives it from the batch and checks `exists` first. Default: a fresh id.
   */
  id?: string;
  source: AsyncIterable<Buffer | string>;
  /** Refuse (ObjectTooLargeError) past this size. Absent: no cap, for files the system writes. */
  maxBytes?: number;
}

export interface PurgeReport {
  /** Files whose expiry passed and that this run marked deleted. */
  expired: number;
  /** Stored objects of deleted files removed. */
  purged: number;
}

/** Everything stored lives under this prefix; a key here without a live row is an orphan. */
export const FILES_PREFIX = 'files/';
/** Objects younger than this may belong to an upload whose row is about to be written. */
const ORPHAN_MIN_AGE_MS = 60 * 60_000;
const PURGE_BATCH = 200;
/** Batches that may still read their input file: validating, in_progress, finalizing, cancelling. */
const ACTIVE_STATUSES = BATCH_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));
/** SQL: an active batch reads file `f` (statuses in $1). */
const ACTIVE_BATCH = `SELECT 1 FROM batches b WHERE b.input_file_id = f.id AND b.status = ANY($1)`;

/**
 * Where a file's bytes live. Writers that may run more than once for the same file id (a
 * retried batch finalize) stage under a key of their attempt, so one attempt never overwrites
 * another's object; the file's id stays the last path segment (the orphan sweep relies on it).
 */
const objectKey = (tenantId: string, fileId: string, attempt?: string) =>
  attempt === undefined
    ? `${FILES_PREFIX}${tenantId}/${fileId}`
    : `${FILES_PREFIX}${tenantId}/attempts/${attempt}/${fileId}`;
export const fileNotFound = (id: string) => notFound(`No such File object: ${echo(id)}`, 'id');

/**
 * Files: rows in Postgres, bytes in object storage. A plain class (no Nest) so the API and
 * the worker's activities share it.
 *
 * Lifecycle rules:
 * - A file is written object first, row second, so a row always has its bytes. An object
 *   without a row (a crash between the two) is swept as an orphan after an hour.
 * - Deleting or expiring a file hides it from its tenant at once (`deleted_at`), but its object
 *   stays while a batch that is not finished (validating, in_progress, finalizing, cancelling)
 *   reads it as input; the purge job removes the object once no such batch is left and then
 *   sets `purged_at`. Rows are never removed: batches reference them.
 */
export class FileStore {
  constructor(
    private readonly db: DataSource,
    private readonly storage: ObjectStorage,
    private readonly config: BargeConfig,
    private readonly log: Pick<Console, 'warn'> = console,
  ) {}

  /** Stores a file and returns its row. On any failure nothing is left behind. */
  async create(input: CreateFileInput): Promise<FileRecord> {
    const stored = await this.upload(input.tenantId, input.source, {
      id: input.id,
      maxBytes: input.maxBytes,
      contentType: contentTypeOf(input.filename),
    });
    return this.commit(stored, input);
  }

  /**
   * First half of `create`: streams the bytes to storage under a fresh file id. Follow with
   * `commit` or `discard`. Rejects, leaving nothing, if the source fails or exceeds maxBytes.
   */
  async upload(
    tenantId: string,
    source: AsyncIterable<Buffer | string>,
    options: { id?: string; attempt?: string; maxBytes?: number; contentType?: string } = {},
  ): Promise<StoredObject> {
    const id = options.id ?? newId('file-');
    const key = objectKey(tenantId, id, options.attempt);
    const { bytes } = await this.storage.putStream(key, source, {
      maxBytes: options.maxBytes,
      contentType: options.contentType,
    });
    return { id, tenantId, objectKey: key, bytes };
  }

  /**
   * Second half of `create`: writes the row (inside `tx` when given, which then owns the
   * clean-up of a failed commit). If that fails, the object is removed.
   */
  async commit(stored: StoredObject, details: FileDetails, tx?: EntityManager): Promise<FileRecord> {
    const createdAt = details.createdAt ?? new Date();
    const record = this.db.getRepository(FileRecord).create({
      id: stored.id,
      tenantId: stored.tenantId,
      filename: details.filename,
      purpose: details.purpose,
      bytes: stored.bytes,
      objectKey: stored.objectKey,
      createdAt,
      expiresAt:
        details.expiresAt !== undefined ? details.expiresAt : this.defaultExpiry(details.purpose, createdAt),
      deletedAt: null,
      purgedAt: null,
    });
    if (tx) {
      await tx.getRepository(FileRecord).insert(record);
      return record;
    }
    try {
      await this.db.getRepository(FileRecord).insert(record);
    } catch (err) {
      // With a caller-chosen id, a concurrent attempt may have committed this very object:
      // then it is that row's, and must stay.
      if (!(await this.exists(stored.id).catch(() => true))) await this.discard(stored);
      throw err;
    }
    return record;
  }

  /** Whether any file, in any state and of any tenant, has this id. */
  async exists(id: string): Promise<boolean> {
    return this.db.getRepository(FileRecord).existsBy({ id });
  }

  /** Removes an uploaded object that will not be committed. */
  async discard(stored: StoredObject): Promise<void> {
    await this.storage.remove(stored.objectKey).catch((err: Error) => {
      // The orphan sweep will get it.
      this.log.warn(`files: could not remove uncommitted object ${stored.objectKey}: ${err.message}`);
    });
  }

  /**
   * The tenant's file. Missing, foreign, deleted and expired ids all throw the same 404.
   * `includeDeleted` is for the worker reading the input of a running batch, which stays
   * readable after its owner deleted it (until its object is purged).
   */
  async get(tenantId: string, id: string, options: { includeDeleted?: boolean } = {}): Promise<FileRecord> {
    const query = this.db
      .getRepository(FileRecord)
      .createQueryBuilder('f')
      .where('f.id = :id AND f.tenant_id = :tenantId', { id, tenantId });
    if (options.includeDeleted) query.andWhere('f.purged_at IS NULL');
    else visibleOnly(query);
    const record = await query.getOne();
    if (!record) throw fileNotFound(id);
    return record;
  }

  /**
   * Inside a batch's creation: holds the tenant's input file row (FOR SHARE) so that a
   * concurrent delete either happens first (false: the file is gone) or sees the new batch
   * as a reader.
   */
  async holdForBatch(tx: EntityManager, tenantId: string, fileId: string): Promise<boolean> {
    const rows = await tx.query(
      `SELECT 1 FROM files WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL FOR SHARE`,
      [fileId, tenantId],
    );
    return rows.length > 0;
  }

  /**
   * The stored object of a batch's input file: deleted files count too, since an active batch
   * keeps reading its input until it ends; null once purged or unknown.
   */
  async inputObject(fileId: string): Promise<{ objectKey: string; bytes: number } | null> {
    const [row] = await this.db.query(
      `SELECT object_key, bytes FROM files WHERE id = $1 AND purged_at IS NULL`,
      [fileId],
    );
    return row ? { objectKey: row.object_key, bytes: Number(row.bytes) } : null;
  }

  /** A page of the tenant's files, optionally of one purpose. */
  async list(tenantId: string, page: PageQuery, purpose?: string): Promise<Page<FileRecord>> {
    const query = this.db
      .getRepository(FileRecord)
      .createQueryBuilder('f')
      .where('f.tenant_id = :tenantId', { tenantId });
    visibleOnly(query);
    if (purpose !== undefined) query.andWhere('f.purpose = :purpose', { purpose });
    return fetchPage(query, page, tenantId);
  }

  /** The file's bytes, or the inclusive range of them. */
  async open(record: FileRecord, range?: ByteRange): Promise<Readable> {
    return this.storage.getStream(record.objectKey, range);
  }

  /**
   * Deletes the tenant's file. Its object goes at once unless an active batch reads it, in
   * which case the purge job removes it once that batch has finished.
   */
  async delete(tenantId: string, id: string, now = new Date()): Promise<void> {
    const stillRead = await this.db.transaction(async (tx) => {
      // FOR UPDATE waits for a batch being created on this file (its insert holds a key-share
      // lock through the foreign key), so the active-batch check below sees it.
      const [row] = await tx.query(
        `SELECT f.id FROM files f
          WHERE f.id = $1 AND f.tenant_id = $2 AND f.deleted_at IS NULL
            AND (f.expires_at IS NULL OR f.expires_at > $3)
          FOR UPDATE`,
        [id, tenantId, now],
      );
      if (!row) throw fileNotFound(id);
      await tx.query(`UPDATE files SET deleted_at = $2 WHERE id = $1`, [id, now]);
      return this.hasActiveBatch(tx, id);
    });
    if (!stillRead) await this.purgeObject(id, now);
  }

  /**
   * The scheduled clean-up: marks files whose expiry passed as deleted, then removes the
   * objects of deleted files that no active batch reads. Safe to run concurrently with itself
   * (removal is idempotent) but the API runs it under an advisory lock to avoid double work.
   */
  async purgeExpired(now = new Date()): Promise<PurgeReport> {
    const [, expired] = (await this.db.query(
      `UPDATE files SET deleted_at = expires_at
        WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1`,
      [now],
    )) as [unknown, number];

    let purged = 0;
    let after = '';
    for (;;) {
      const rows: { id: string }[] = await this.db.query(
        `SELECT f.id FROM files f
          WHERE f.deleted_at IS NOT NULL AND f.purged_at IS NULL AND f.id > $2
            AND NOT EXISTS (${ACTIVE_BATCH})
          ORDER BY f.id LIMIT ${PURGE_BATCH}`,
        [ACTIVE_STATUSES, after],
      );
      for (const { id } of rows) {
        if (await this.purgeObject(id, now)) purged++;
      }
      if (rows.length < PURGE_BATCH) break;
      after = rows[rows.length - 1].id;
    }
    return { expired, purged };
  }

  /**
   * Removes objects under `files/` older than an hour that no unpurged row claims: leftovers of
   * a process that died between upload and commit. Returns how many it removed.
   */
  async sweepOrphans(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - ORPHAN_MIN_AGE_MS);
    let removed = 0;
    let keys: string[] = [];
    const sweep = async () => {
      const ids = keys.map((key) => key.slice(key.lastIndexOf('/') + 1));
      const live: { object_key: string }[] = await this.db.query(
        `SELECT object_key FROM files WHERE id = ANY($1) AND purged_at IS NULL`,
        [ids],
      );
      const claimed = new Set(live.map((r) => r.object_key));
      for (const key of keys) {
        if (claimed.has(key)) continue;
        await this.storage.remove(key);
        removed++;
      }
      keys = [];
    };
    for await (const key of this.storage.listOlderThan(FILES_PREFIX, cutoff)) {
      keys.push(key);
      if (keys.length >= PURGE_BATCH) await sweep();
    }
    if (keys.length > 0) await sweep();
    return removed;
  }

  /** Removes a deleted file's object and records it. False if storage refused (retried later). */
  private async purgeObject(id: string, now: Date): Promise<boolean> {
    const [row] = await this.db.query(`SELECT object_key FROM files WHERE id = $1 AND purged_at IS NULL`, [
      id,
    ]);
    if (!row) return false;
    try {
      await this.storage.remove(row.object_key);
    } catch (err) {
      this.log.warn(`files: could not remove ${row.object_key}, will retry: ${(err as Error).message}`);
      return false;
    }
    await this.db.query(`UPDATE files SET purged_at = $2 WHERE id = $1`, [id, now]);
    return true;
  }

  private defaultExpiry(purpose: FilePurpose, createdAt: Date): Date | null {
    if (purpose !== 'batch') return null;
    return new Date(createdAt.getTime() + this.config.limits.batchFileTtlSeconds * 1000);
  }

  private async hasActiveBatch(tx: EntityManager, fileId: string): Promise<boolean> {
    const rows = await tx.query(`SELECT 1 FROM files f WHERE f.id = $2 AND EXISTS (${ACTIVE_BATCH})`, [
      ACTIVE_STATUSES,
      fileId,
    ]);
    return rows.length > 0;
  }
}

/** Rows a tenant can see: not deleted, not past their expiry (even before the purge runs). */
function visibleOnly(query: SelectQueryBuilder<FileRecord>): void {
  const f = query.alias;
  query.andWhere(`${f}.deleted_at IS NULL AND (${f}.expires_at IS NULL OR ${f}.expires_at > :now)`, {
    now: new Date(),
  });
}

/** How a file is served and stored: JSONL by name, anything else as opaque bytes. */
export function contentTypeOf(filename: string): string {
  return filename.toLowerCase().endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream';
}
