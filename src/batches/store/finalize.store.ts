import type { DataSource } from 'typeorm';
import { WorkBusy } from '../../common/failures';
import type { ByteBudget } from '../dispatch/byte-budget';
import type { BatchRecord } from '../../database/entities/batch.entity';
import type { FileStore } from '../../files/file-store';
import type { FencedSession, FinalizeEnd, FinalizeStore, StagedFile } from '../finalize/finalizer';
import { BatchRepository } from './batch.repository';
import { recordOutcomes, WorkRepository, type RecordedLine } from './work.repository';

const ALREADY_ENDED = new Error('the batch had already ended');

/** Key space of pg_try_advisory_lock(int, int) for finalize fences ("bf"). */
const FINALIZE_LOCK_CLASS = 0x6266;

/** The Finalizer's store in Postgres: the batch and work repositories, plus the fence. */
export class PgFinalizeStore implements FinalizeStore {
  constructor(
    private readonly db: DataSource,
    private readonly batches: BatchRepository,
    private readonly work: WorkRepository,
    private readonly files: FileStore,
    /** The worker's answer budget: output pages being written take room from it as well. */
    private readonly memory?: ByteBudget,
  ) {}

  batch(batchId: string): Promise<BatchRecord> {
    return this.batches.get(batchId);
  }

  markFinalizing(batchId: string): Promise<boolean> {
    return this.batches.markFinalizing(batchId);
  }

  chunks(batchId: string) {
    return this.work.chunks(batchId);
  }

  answeredLines(batchId: string, from: number, to: number) {
    return this.work.answeredLines(batchId, from, to);
  }

  countOutcomes(batchId: string) {
    return this.work.countOutcomes(batchId);
  }

  outputs(batchId: string, ok: boolean): AsyncIterable<RecordedLine> {
    return this.work.outputs(batchId, ok, { memory: this.memory });
  }

  deleteWorkingData(batchId: string): Promise<void> {
    return this.work.deleteWorkingData(batchId);
  }

  /**
   * The fence is a session-level advisory lock on a connection of its own, and every fenced
   * write runs on that same connection: if the connection (and with it the lock) is lost, the
   * writes fail with it, so no write can happen without the lock.
   */
  async fenced<T>(batchId: string, fn: (session: FencedSession) => Promise<T>): Promise<T> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
        FINALIZE_LOCK_CLASS,
        batchId,
      ]);
      if (!locked) throw new WorkBusy(`batch ${batchId} is being finalized by another attempt`);
      try {
        return await fn({
          record: async (id, outcomes) => (await recordOutcomes(runner.manager, id, outcomes)).length,
          commit: (batch, end) => this.commit(runner.manager, batch, end),
        });
      } finally {
        await runner
          .query('SELECT pg_advisory_unlock($1, hashtext($2))', [FINALIZE_LOCK_CLASS, batchId])
          .catch(() => undefined); // a lost connection released it already
      }
    } finally {
      await runner.release();
    }
  }

  /** Files first (the batch row references them), then the end; rolled back if it had ended already. */
  private async commit(
    manager: DataSource['manager'],
    batch: BatchRecord,
    end: FinalizeEnd,
  ): Promise<boolean> {
    try {
      await manager.transaction(async (tx) => {
        for (const file of [end.outputFile, end.errorFile]) {
          if (file) await this.commitFile(tx, batch, file, end.filesCreatedAt, end.filesExpireAt);
        }
        const ended = await this.batches.markEnded(tx, batch.id, end.status, {
          outputFileId: end.outputFile?.id ?? null,
          errorFileId: end.errorFile?.id ?? null,
          errors: end.errors,
        });
        if (!ended) throw ALREADY_ENDED;
      });
      return true;
    } catch (error) {
      if (error === ALREADY_ENDED) return false;
      throw error;
    }
  }

  private async commitFile(
    tx: DataSource['manager'],
    batch: BatchRecord,
    file: StagedFile,
    createdAt: Date,
    expiresAt: Date | null,
  ): Promise<void> {
    await this.files.commit(
      { id: file.id, tenantId: batch.tenantId, objectKey: file.objectKey, bytes: file.bytes },
      { filename: file.filename, purpose: 'batch_output', createdAt, expiresAt },
      tx,
    );
  }
}
