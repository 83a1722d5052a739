import { Client } from 'minio';
import { MinioStorage } from '../../src/storage/minio-storage';
import { withTestDb } from './api';
import { stackConfig } from './stack';

export interface StoredForTenant {
  rows: number;
  objects: string[];
  /** Unfinished multipart uploads under the tenant's prefix. */
  uploads: string[];
}

/** Everything a tenant has stored: file rows, objects and unfinished multipart uploads. */
export async function storedFor(tenantId: string): Promise<StoredForTenant> {
  const config = stackConfig();
  const storage = new MinioStorage(config.storage);
  const url = new URL(config.storage.endpoint);
  const minio = new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    accessKey: config.storage.accessKey,
    secretKey: config.storage.secretKey,
  });
  const prefix = `files/${tenantId}/`;
  const objects: string[] = [];
  for await (const key of storage.listOlderThan(prefix, new Date(Date.now() + 3600_000))) objects.push(key);
  const uploads: string[] = [];
  // MinIO lists unfinished uploads by exact key or for the whole bucket, not by a key prefix.
  for await (const u of minio.listIncompleteUploads(config.storage.bucket, '', true) as AsyncIterable<{
    key: string;
  }>) {
    if (u.key.startsWith(prefix)) uploads.push(u.key);
  }
  const [{ n }] = await withTestDb((db) =>
    db.query(`SELECT count(*)::int AS n FROM files WHERE tenant_id = $1`, [tenantId]),
  );
  return { rows: n as number, objects, uploads };
}
