import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { MinioStorage } from '../../src/storage/minio-storage';
import { ObjectTooLargeError } from '../../src/storage/object-storage';
import { stackConfig } from '../support/stack';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The storage driver against a real MinIO. */
describe('MinioStorage', () => {
  const config = stackConfig();
  const storage = new MinioStorage(config.storage);
  const prefix = `test/storage-${Date.now()}`;

  beforeAll(() => storage.ensureBucket());

  it('round-trips a small object, with ranges, size and removal', async () => {
    const key = `${prefix}/small`;
    const { bytes } = await storage.putStream(key, Readable.from([Buffer.from('hello '), 'world']));
    expect(bytes).toBe(11);
    expect(await storage.size(key)).toBe(11);
    expect((await readAll(await storage.getStream(key))).toString()).toBe('hello world');
    expect((await readAll(await storage.getStream(key, { start: 6, end: 10 }))).toString()).toBe('world');
    await storage.remove(key);
    expect(await storage.size(key)).toBeNull();
  });

  it('streams a multi-part object (larger than one part) intact', async () => {
    const key = `${prefix}/large`;
    const blocks = Array.from({ length: 20 }, () => randomBytes(1024 * 1024)); // 20 MiB, 3 parts
    const { bytes } = await storage.putStream(key, Readable.from(blocks));
    expect(bytes).toBe(20 * 1024 * 1024);
    const back = await readAll(await storage.getStream(key));
    expect(back.equals(Buffer.concat(blocks))).toBe(true);
    const tail = await readAll(await storage.getStream(key, { start: bytes - 5, end: bytes - 1 }));
    expect(tail.equals(blocks[19].subarray(-5))).toBe(true);
    await storage.remove(key);
  });

  it('leaves nothing behind when the source fails midway', async () => {
    const key = `${prefix}/cut`;
    async function* cutOff() {
      for (let i = 0; i < 12; i++) yield randomBytes(1024 * 1024);
      throw new Error('client went away');
    }
    await expect(storage.putStream(key, cutOff())).rejects.toThrow('client went away');
    expect(await storage.size(key)).toBeNull();
    // The multipart upload was aborted, not left for a sweep: nothing incomplete under the key.
    expect(await storage.sweepIncompleteUploads(key, new Date(Date.now() + 60_000))).toBe(0);
  });

  it('sweeps multipart uploads a crashed writer left incomplete', async () => {
    const key = `${prefix}/abandoned`;
    // A writer that died mid-upload: initiated, one part sent, never completed nor aborted.
    const client = (storage as unknown as { client: import('minio').Client }).client;
    const uploadId = await client.initiateNewMultipartUpload(config.storage.bucket, key, {});
    await client.uploadPart(
      { bucketName: config.storage.bucket, objectName: key, uploadID: uploadId, partNumber: 1, headers: {} },
      randomBytes(1024),
    );
    expect(await storage.sweepIncompleteUploads(key, new Date(Date.now() - 60_000))).toBe(0); // too young
    expect(await storage.sweepIncompleteUploads(key, new Date(Date.now() + 60_000))).toBe(1);
    expect(await storage.sweepIncompleteUploads(key, new Date(Date.now() + 60_000))).toBe(0);
  });

  it('refuses an object over maxBytes and leaves nothing behind', async () => {
    const key = `${prefix}/too-big`;
    const source = Readable.from(Array.from({ length: 10 }, () => randomBytes(1024 * 1024)));
    await expect(storage.putStream(key, source, { maxBytes: 9 * 1024 * 1024 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    expect(await storage.size(key)).toBeNull();
  });
});
