import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Client } from 'minio';
import { Readable } from 'node:stream';
import type { BargeConfig } from '../config/config';
import { ObjectStorage, ObjectTooLargeError, PutOptions } from './object-storage';

// S3's minimum part size is 5 MiB; 8 MiB parts allow objects up to 80 GB in 10,000 parts.
const PART_SIZE = 8 * 1024 * 1024;

export class MinioStorage implements ObjectStorage {
  private readonly client: Client;
  /** Used for uploads only (see putStream). */
  private readonly s3: S3Client;
  private readonly bucket: string;

  constructor(config: BargeConfig['storage']) {
    const url = new URL(config.endpoint);
    const useSSL = url.protocol === 'https:';
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
      partSize: PART_SIZE,
    });
    // The SDK warns, once per process, that its releases after January 2027 need Node 22; the
    // version we run is pinned by the lock file, so the warning only adds noise to every log.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.s3 = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: true,
      credentials: { accessKeyId: config.accessKey, secretAccessKey: config.secretKey },
      // MinIO (and S3-compatible stores) need no checksum trailers; keep requests plain.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.bucket = config.bucket;
  }

  async ensureBucket(): Promise<void> {
    if (await this.client.bucketExists(this.bucket)) return;
    try {
      await this.client.makeBucket(this.bucket);
    } catch (err) {
      // Another process created it in the meantime.
      if (!(await this.client.bucketExists(this.bucket))) throw err;
    }
  }

  /**
   * Streams `source` into `key` with lib-storage's Upload: one plain PUT for small objects,
   * else a multipart upload of PART_SIZE parts, one part in flight, aborted on any failure of
   * the source or of storage, so a refused or broken upload leaves no object and no incomplete
   * upload behind. (minio's own putObject cannot do this: it neither aborts a failed multipart
   * upload nor handles an error of its source stream.)
   */
  async putStream(key: string, source: AsyncIterable<Buffer | string>, options: PutOptions = {}) {
    const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
    let total = 0;
    async function* capped(): AsyncGenerator<Buffer> {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        total += buf.length;
        if (total > max) throw new ObjectTooLargeError(max);
        yield buf;
      }
    }
    const upload = new Upload({
      client: this.s3,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: Readable.from(capped(), { objectMode: false }),
        ContentType: options.contentType ?? 'application/octet-stream',
      },
      partSize: PART_SIZE,
      queueSize: 1,
      leavePartsOnError: false,
    });
    await upload.done();
    return { bytes: total };
  }

  /** Aborts multipart uploads under `prefix` started before `olderThan` (left by crashed writers). */
  async sweepIncompleteUploads(prefix: string, olderThan: Date): Promise<number> {
    let removed = 0;
    const stale = new Set<string>();
    const stream = this.client.listIncompleteUploads(this.bucket, prefix, true);
    for await (const item of stream as AsyncIterable<{ key?: string; initiated?: Date }>) {
      if (item.key && item.initiated && item.initiated < olderThan) stale.add(item.key);
    }
    for (const key of stale) {
      await this.client.removeIncompleteUpload(this.bucket, key);
      removed++;
    }
    return removed;
  }

  async getStream(key: string, range?: { start: number; end: number }): Promise<Readable> {
    if (!range) return this.client.getObject(this.bucket, key);
    return this.client.getPartialObject(this.bucket, key, range.start, range.end - range.start + 1);
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await this.client.statObject(this.bucket, key)).size;
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFound' || (err as { code?: string }).code === 'NoSuchKey')
        return null;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.removeObject(this.bucket, key);
  }

  async *listOlderThan(prefix: string, olderThan: Date): AsyncIterable<string> {
    const stream = this.client.listObjectsV2(this.bucket, prefix, true);
    for await (const item of stream as AsyncIterable<{ name?: string; lastModified?: Date }>) {
      if (item.name && item.lastModified && item.lastModified < olderThan) yield item.name;
    }
  }

  async ping(): Promise<void> {
    if (!(await this.client.bucketExists(this.bucket)))
      throw new Error(`bucket ${this.bucket} does not exist`);
  }
}
