import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { BargeConfig } from '../config/config';
import { liftBodyDeadline } from '../common/http-server';
import { invalidRequest, OpenAIError, serviceUnavailable, tooManyRequests } from '../common/openai-error';
import { echo } from '../common/text';
import { CONFIG } from '../core.module';
import type { FileRecord } from '../database/entities/file.entity';
import { ObjectTooLargeError } from '../storage/object-storage';
import { contentTypeOf, FileStore, StoredObject } from './file-store';
import { FirstLineCheck, JsonlVerdict } from './jsonl-check';
import { discardBody, readMultipartForm } from './multipart-form';
import { Metrics } from '../observability/metrics';
import { storageLimitExceeded, TenantQuotas } from '../tenants/tenant-quotas';
import { DataSource } from 'typeorm';
import { fileTooLarge, sanitizeFilename, UploadDetails, UploadForm } from './upload-form';

interface ReceivedFile {
  stored: StoredObject;
  filename: string;
  verdict: JsonlVerdict;
}

type StorageQuota = { limit: number; used: number; room: number };

/** Room for the form around the file (boundaries, part headers, up to 16 short fields). */
const FORM_OVERHEAD_BYTES = 1024 * 1024;

/** Object storage failed under an upload: the client can retry once it is back. */
const storageDown = () =>
  serviceUnavailable('File storage is unavailable right now; please retry the upload later.');

/**
 * `POST /v1/files`: streams the multipart body's file part straight into object storage
 * (busboy -> ObjectStorage.putStream, one storage part in memory at most), then writes the row.
 *
 * The purpose may come before or after the file part. Before: its size cap and the JSONL check
 * apply while streaming and a bad file is refused at its first line. After (openai-node's
 * order): the file streams under the general cap (limits.maxFileBytes), and once the form is
 * complete the purpose's own rules apply; a file that breaks them is removed and refused.
 *
 * Whatever refuses an upload (a form rule, the size cap, the client leaving, storage failing),
 * nothing is left behind: no object, no unfinished multipart upload, no row.
 */
@Injectable()
export class FileUploadService {
  private readonly logger = new Logger('uploads');
  /** Uploads in flight in this process, per tenant. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly store: FileStore,
    @Inject(CONFIG) private readonly config: BargeConfig,
    private readonly metrics: Metrics,
    private readonly quotas: TenantQuotas,
    private readonly db: DataSource,
  ) {}

  async upload(tenantId: string, req: IncomingMessage): Promise<FileRecord> {
    this.refuseEarly(req);
    const release = this.takeSlot(tenantId, req);
    try {
      const quota = await this.quotas.storageRoom(tenantId);
      if (quota && quota.room <= 0) {
        discardBody(req);
        throw storageLimitExceeded(quota.limit, quota.used, null);
      }
      // From here the body streams under the idle timeout, however long the whole upload takes.
      liftBodyDeadline(req);
      const form = new UploadForm(this.config.limits);
      const received = await this.receiveForm(tenantId, req, form, quota);
      let details: UploadDetails;
      try {
        details = form.complete({ ...received, bytes: received.stored.bytes });
      } catch (err) {
        await this.store.discard(received.stored);
        throw err;
      }
      const file = await this.commitUnderQuota(received.stored, details);
      this.metrics.fileBytes.labels('uploaded').inc(file.bytes);
      return file;
    } finally {
      release();
    }
  }

  /**
   * Writes the row in a transaction that first admits the bytes under the tenant's storage
   * quota (the tenant's row lock makes the sum and the insert one step); removes the object
   * when the row is not written.
   */
  private async commitUnderQuota(stored: StoredObject, details: UploadDetails): Promise<FileRecord> {
    try {
      return await this.db.transaction(async (tx) => {
        await this.quotas.admitStorage(tx, stored.tenantId, stored.bytes);
        return this.store.commit(stored, details, tx);
      });
    } catch (err) {
      await this.store.discard(stored);
      throw err;
    }
  }

  /** What the headers alone show: a body that is not a form, or is larger than any file may be. */
  private refuseEarly(req: IncomingMessage): void {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.config.limits.maxFileBytes + FORM_OVERHEAD_BYTES) {
      discardBody(req);
      throw fileTooLarge(this.config.limits.maxFileBytes, undefined);
    }
  }

  /** A slot among the tenant's concurrent uploads, or a 429 when they are all taken. */
  private takeSlot(tenantId: string, req: IncomingMessage): () => void {
    const max = this.config.api.maxConcurrentUploadsPerTenant;
    const current = this.inFlight.get(tenantId) ?? 0;
    if (current >= max) {
      discardBody(req);
      throw tooManyRequests(
        `Too many concurrent uploads: at most ${max} per tenant may be in progress at once.`,
        'too_many_concurrent_uploads',
      );
    }
    this.inFlight.set(tenantId, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(tenantId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(tenantId, left);
      else this.inFlight.delete(tenantId);
    };
  }

  /** Reads the whole form; the file is stored, or nothing is when anything fails. */
  private async receiveForm(
    tenantId: string,
    req: IncomingMessage,
    form: UploadForm,
    quota: StorageQuota | null,
  ): Promise<ReceivedFile> {
    let received: ReceivedFile | undefined;
    try {
      await readMultipartForm(
        req,
        {
          onField: (name, value) => form.setField(name, value),
          onFile: async (name, stream, filename) => {
            if (name !== 'file') {
              throw invalidRequest(`Unexpected file part '${echo(name)}': send the file as 'file'.`, name);
            }
            received = await this.receiveFile(tenantId, stream, sanitizeFilename(filename), form, quota);
          },
        },
        { idleTimeoutMs: this.config.api.streamIdleTimeoutMs },
      );
    } catch (err) {
      // E.g. a bad field after the file part, or the client leaving before the form's end.
      if (received) await this.store.discard(received.stored);
      throw err;
    }
    if (!received) throw invalidRequest("Missing required parameter: 'file'.", 'file');
    return received;
  }

  private async receiveFile(
    tenantId: string,
    stream: Readable,
    filename: string,
    form: UploadForm,
    quota: StorageQuota | null,
  ): Promise<ReceivedFile> {
    form.checkFilename(filename);
    const firstLine = new FirstLineCheck();
    let sourceError: unknown;
    // Throwing here ends the source, which aborts the storage upload.
    async function* inspected(): AsyncIterable<Buffer> {
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          firstLine.observe(chunk);
          form.checkFirstLine(firstLine.verdict);
          yield chunk;
        }
      } catch (err) {
        sourceError = err;
        throw err;
      }
    }
    // The quota's room caps the stream too: an upload that cannot fit is cut as soon as it passes.
    const quotaCaps = quota !== null && quota.room < form.streamingCap();
    try {
      const stored = await this.store.upload(tenantId, inspected(), {
        maxBytes: quotaCaps ? quota.room : form.streamingCap(),
        contentType: contentTypeOf(filename),
      });
      return { stored, filename, verdict: firstLine.finish() };
    } catch (err) {
      if (err instanceof ObjectTooLargeError && quotaCaps) {
        throw storageLimitExceeded(quota.limit, quota.used, 'cut');
      }
      if (err instanceof ObjectTooLargeError) throw fileTooLarge(err.maxBytes, form.knownPurpose);
      // The form's own failures (a refusal, the client leaving) pass through as they are.
      if (err === sourceError || err instanceof OpenAIError) throw err;
      this.logger.warn(`upload to storage failed: ${(err as Error).message}`);
      throw storageDown();
    }
  }
}
