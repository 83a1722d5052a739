import { Inject, Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { BargeConfig } from '../config/config';
import { invalidRequest } from '../common/openai-error';
import { CONFIG } from '../core.module';
import type { FileRecord } from '../database/entities/file.entity';
import { ObjectTooLargeError } from '../storage/object-storage';
import { contentTypeOf, FileStore, StoredObject } from './file-store';
import { FirstLineCheck, JsonlVerdict } from './jsonl-check';
import { readMultipartForm } from './multipart-form';
import { fileTooLarge, sanitizeFilename, UploadDetails, UploadForm } from './upload-form';

interface ReceivedFile {
  stored: StoredObject;
  filename: string;
  verdict: JsonlVerdict;
}

/**
 * `POST /v1/files`: streams the multipart body's file part straight into object storage
 * (busboy -> ObjectStorage.putStream, one storage part in memory at most), then writes the row.
 *
 * The purpose may come before or after the file part. Before: its size cap and the JSONL check
 * apply while streaming and a bad file is refused at its first line. After (openai-node's
 * order): the file streams under the general cap (limits.maxFileBytes), and once the form is
 * complete the purpose's own rules apply; a file that breaks them is removed and refused.
 */
@Injectable()
export class FileUploadService {
  constructor(
    private readonly store: FileStore,
    @Inject(CONFIG) private readonly config: BargeConfig,
  ) {}

  async upload(tenantId: string, req: IncomingMessage): Promise<FileRecord> {
    const form = new UploadForm(this.config.limits);
    const received = await this.receiveForm(tenantId, req, form);
    let details: UploadDetails;
    try {
      details = form.complete({ ...received, bytes: received.stored.bytes });
    } catch (err) {
      await this.store.discard(received.stored);
      throw err;
    }
    return this.store.commit(received.stored, details);
  }

  /** Reads the whole form; the file is stored, or nothing is when anything fails. */
  private async receiveForm(tenantId: string, req: IncomingMessage, form: UploadForm): Promise<ReceivedFile> {
    let received: ReceivedFile | undefined;
    try {
      await readMultipartForm(req, {
        onField: (name, value) => form.setField(name, value),
        onFile: async (name, stream, filename) => {
          if (name !== 'file') {
            throw invalidRequest(`Unexpected file part '${name}': send the file as 'file'.`, name);
          }
          received = await this.receiveFile(tenantId, stream, sanitizeFilename(filename), form);
        },
      });
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
  ): Promise<ReceivedFile> {
    form.checkFilename(filename);
    const firstLine = new FirstLineCheck();
    // Throwing here ends the source, which aborts the storage upload.
    async function* inspected(): AsyncIterable<Buffer> {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        firstLine.observe(chunk);
        form.checkFirstLine(firstLine.verdict);
        yield chunk;
      }
    }
    try {
      const stored = await this.store.upload(tenantId, inspected(), {
        maxBytes: form.streamingCap(),
        contentType: contentTypeOf(filename),
      });
      return { stored, filename, verdict: firstLine.finish() };
    } catch (err) {
      if (err instanceof ObjectTooLargeError) throw fileTooLarge(err.maxBytes, form.knownPurpose);
      throw err;
    }
  }
}
