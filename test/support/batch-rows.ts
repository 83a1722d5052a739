import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BatchRepository } from '../../src/batches/store/batch.repository';
import { BatchRecord } from '../../src/database/entities/batch.entity';
import type { FileStore } from '../../src/files/file-store';

/**
 * A batch row in progress over `input` (stored as the tenant's batch file), written straight
 * through the repositories, for tests of the stages after validation (dispatch, finalize).
 */
export async function insertBatchInProgress(
  stores: { files: FileStore; batches: BatchRepository },
  tenantId: string,
  input: string,
): Promise<BatchRecord> {
  const file = await stores.files.create({
    tenantId,
    filename: 'in.jsonl',
    purpose: 'batch',
    source: Readable.from([Buffer.from(input)]),
  });
  const batch = Object.assign(new BatchRecord(), {
    id: `batch_${randomBytes(12).toString('hex')}`,
    tenantId,
    endpoint: '/v1/chat/completions',
    model: 'm',
    inputFileId: file.id,
    completionWindow: '24h',
    status: 'in_progress',
    provider: null,
    idempotencyKey: null,
    outputFileId: null,
    errorFileId: null,
    errors: null,
    metadata: null,
    outputExpiresAfterSeconds: null,
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 86_400_000),
  });
  await stores.batches.insert(batch);
  return batch;
}
