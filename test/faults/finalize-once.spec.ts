import type { DataSource } from 'typeorm';
import { readChunk } from '../../src/batches/dispatch/chunk-reader';
import { Finalizer, outputFileId } from '../../src/batches/finalize/finalizer';
import { BatchRepository } from '../../src/batches/store/batch.repository';
import { PgFinalizeStore } from '../../src/batches/store/finalize.store';
import { WorkRepository, type RequestOutcome } from '../../src/batches/store/work.repository';
import { WorkBusy } from '../../src/common/failures';
import { createDataSource } from '../../src/database/data-source';
import { BatchRecord } from '../../src/database/entities/batch.entity';
import { FileStore } from '../../src/files/file-store';
import { MinioStorage } from '../../src/storage/minio-storage';
import { createTenant, uniqueTenant } from '../support/api';
import { insertBatchInProgress } from '../support/batch-rows';
import { stackConfig } from '../support/stack';

/**
 * Finalize runs once, against the real Postgres and MinIO: a second attempt started while the
 * first still streams (a finalize slower than its heartbeat timeout, or a retry) cannot write,
 * the committed file is complete and matches its row, and a committed file is never replaced.
 */
describe('finalize, once', () => {
  const config = stackConfig();
  const storage = new MinioStorage(config.storage);
  let db: DataSource;
  let files: FileStore;
  let batches: BatchRepository;
  let work: WorkRepository;
  let tenantId: string;

  beforeAll(async () => {
    db = createDataSource(config, 'barge-test');
    await db.initialize();
    files = new FileStore(db, storage, config);
    batches = new BatchRepository(db);
    work = new WorkRepository(db);
    tenantId = (await createTenant(uniqueTenant('finalize'))).tenantId;
  });
  afterAll(() => db.destroy());

  /** A batch in progress with `n` requests, of which `answered` are recorded. */
  async function batchWith(n: number, answered: number): Promise<BatchRecord> {
    const input = Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        custom_id: `f-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'm' },
      }),
    ).join('\n');
    const batch = await insertBatchInProgress({ files, batches }, tenantId, input + '\n');
    await work.replaceChunks(batch.id, [
      {
        idx: 0,
        firstLine: 1,
        lineCount: n,
        requestCount: n,
        byteStart: 0,
        byteEnd: Buffer.byteLength(input) + 1,
      },
    ]);
    const outcomes: RequestOutcome[] = Array.from({ length: answered }, (_, i) => ({
      line: i + 1,
      customId: `f-${i}`,
      ok: true,
      output: JSON.stringify({
        id: `r${i}`,
        custom_id: `f-${i}`,
        response: { status_code: 200, body: { pad: 'x'.repeat(500) } },
        error: null,
      }),
      inputTokens: 1,
      cachedTokens: 0,
      outputTokens: 1,
      reasoningTokens: 0,
    }));
    await work.record(batch.id, outcomes);
    return batch;
  }

  /** The production wiring, with a way to slow the streaming of files down. */
  function finalizer(slowBy = 0) {
    return new Finalizer({
      store: new PgFinalizeStore(db, batches, work, files),
      readChunk: async (batch, chunk, skip) => {
        const input = await files.inputObject(batch.inputFileId);
        return readChunk(storage, input!.objectKey, chunk, skip);
      },
      stage: async (batch, file, attempt, source) => {
        async function* slow() {
          for await (const part of source) {
            if (slowBy) await new Promise((r) => setTimeout(r, slowBy));
            yield part;
          }
        }
        const stored = await files.upload(batch.tenantId, slow(), { id: file.id, attempt });
        return { id: stored.id, objectKey: stored.objectKey, bytes: stored.bytes, filename: file.filename };
      },
      discard: (file) => storage.remove(file.objectKey),
      now: () => new Date(),
    });
  }

  async function text(fileId: string): Promise<string> {
    const record = await files.get(tenantId, fileId);
    let out = '';
    for await (const part of await files.open(record)) out += part.toString();
    expect(Buffer.byteLength(out)).toBe(record.bytes);
    return out;
  }

  it('lets a second attempt neither write nor truncate while the first still streams', async () => {
    // ~3 MiB of output in ~1 MiB parts, each part 300 ms late: the first attempt is slow.
    const batch = await batchWith(6_000, 5_000);
    const first = finalizer(300).finalize({ batchId: batch.id, reason: 'completed' });
    await new Promise((r) => setTimeout(r, 200));
    await expect(finalizer().finalize({ batchId: batch.id, reason: 'completed' })).rejects.toBeInstanceOf(
      WorkBusy,
    );
    expect(await first).toEqual({ status: 'completed' });

    const ended = (await batches.get(batch.id))!;
    expect(ended.status).toBe('completed');
    expect(ended.outputFileId).toBe(outputFileId(batch.id, 'output'));
    const output = (await text(ended.outputFileId!)).trim().split('\n');
    const errors = (await text(ended.errorFileId!)).trim().split('\n');
    expect([output.length, errors.length]).toEqual([5_000, 1_000]);
    expect(new Set([...output, ...errors].map((l) => JSON.parse(l).custom_id)).size).toBe(6_000);
    // After the commit the chunks are gone and the outcome rows are slimmed to offsets into
    // the committed files (results and retry read them): no row keeps its line.
    const [rows] = await db.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE output IS NULL AND file_offset IS NOT NULL)::int AS slim,
              (SELECT count(*)::int FROM batch_chunks WHERE batch_id = $1) AS chunks,
              (SELECT indexed FROM batch_results WHERE batch_id = $1) AS indexed
         FROM request_results WHERE batch_id = $1`,
      [batch.id],
    );
    expect(rows).toEqual({ n: 6_000, slim: 6_000, chunks: 0, indexed: true });

    // A late retry finds the batch ended and changes nothing.
    expect(await finalizer().finalize({ batchId: batch.id, reason: 'cancelled' })).toEqual({
      status: 'completed',
    });
    expect((await batches.get(batch.id))!.status).toBe('completed');
    expect((await text(ended.outputFileId!)).trim().split('\n')).toHaveLength(5_000);
  }, 60_000);

  it('cannot write once its fence is gone: the attempt fails, and the next one commits', async () => {
    const batch = await batchWith(50, 10);
    const attempt = finalizer(500).finalize({ batchId: batch.id, reason: 'expired' });
    await new Promise((r) => setTimeout(r, 100));
    // The fence's session dies (a network blip, a restarted pooler): its lock goes with it.
    await db.query(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = hashtext($2)::oid`,
      [0x6266, batch.id],
    );
    await expect(attempt).rejects.toThrow();
    expect((await batches.get(batch.id))!.status).toBe('in_progress');

    expect(await finalizer().finalize({ batchId: batch.id, reason: 'expired' })).toEqual({
      status: 'expired',
    });
    const ended = (await batches.get(batch.id))!;
    expect((await text(ended.errorFileId!)).trim().split('\n')).toHaveLength(40);
  }, 60_000);
});
