import { Client } from 'minio';
import type { Readable } from 'node:stream';
import type { BargeConfig } from '../config/config';
import { ObjectStorage, ObjectTooLargeError, PutOptions } from './object-storage';

// S3's minimum part size is 5 MiB; 8 MiB parts allow objects up to 80 GB in 10,000 parts.
const PART_SIZE = 8 * 1024 * 1024;

export class MinioStorage implements ObjectStorage {
  private readonly client: Client;
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

  async putStream(key: string, source: AsyncIterable<Buffer | string>, options: PutOptions = {}) {
    const headers = { 'Content-Type': options.contentType ?? 'application/octet-stream' };
    const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let total = 0;
    let uploadId: string | undefined;
    const parts: { part: number; etag: string }[] = [];

    const flushPart = async () => {
      uploadId ??= await this.client.initiateNewMultipartUpload(this.bucket, key, headers);
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const part = parts.length + 1;
      const { etag } = await this.client.uploadPart(
        {
          bucketName: this.bucket,
          objectName: key,
          uploadID: uploadId,
          partNumber: part,
          headers: { 'Content-Length': body.length },
        },
        body,
      );
      parts.push({ part, etag });
    };

    try {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        total += buf.length;
        if (total > max) throw new ObjectTooLargeError(max);
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= PART_SIZE) await flushPart();
      }
      if (uploadId === undefined) {
        // Small object: one plain PUT.
        await this.client.putObject(
          this.bucket,
          key,
          Buffer.concat(pending, pendingBytes),
          pendingBytes,
          headers,
        );
      } else {
        if (pendingBytes > 0) await flushPart();
        await this.client.completeMultipartUpload(this.bucket, key, uploadId, parts);
      }
      return { bytes: total };
    } catch (err) {
      if (uploadId !== undefined) {
        await this.client.abortMultipartUpload(this.bucket, key, uploadId).catch(() => undefined);
      }
      throw err;
    }
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
