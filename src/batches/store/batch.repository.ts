import type { DataSource, EntityManager } from 'typeorm';
import { BatchNotFound } from '../../common/failures';
import { fetchPage, Page, PageQuery } from '../../common/pagination';
import {
  BatchErrorItem,
  BatchRecord,
  BatchStatus,
  TERMINAL_STATUSES,
} from '../../database/entities/batch.entity';

export const NON_TERMINAL: readonly BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/** How a batch ends once finalize has written its files. */
export type EndStatus = 'completed' | 'cancelled' | 'expired' | 'failed';

const END_STAMP: Record<EndStatus, string> = {
  completed: 'completed_at',
  cancelled: 'cancelled_at',
  expired: 'expired_at',
  failed: 'failed_at',
};

/**
 * The batches table, shared by the API and the worker. Postgres is the truth: status changes
 * are conditional updates, so replayed or racing calls are harmless. Which process may make
 * which transition: the API inserts (validating); the workflow's activities make every other
 * transition (validation, cancelling, finalizing, the end).
 */
export class BatchRepository {
  constructor(private readonly db: DataSource) {}

  private repo(db: DataSource | EntityManager = this.db) {
    return db.getRepository(BatchRecord);
  }

  async insert(batch: BatchRecord, tx?: EntityManager): Promise<void> {
    await this.repo(tx).insert(batch);
  }

  async remove(id: string): Promise<void> {
    await this.repo().delete({ id });
  }

  find(id: string): Promise<BatchRecord | null> {
    return this.repo().findOneBy({ id });
  }

  /** The batch, or BatchNotFound (a deterministic failure: the row will not come back). */
  async get(id: string): Promise<BatchRecord> {
    const batch = await this.find(id);
    if (!batch) throw new BatchNotFound(id);
    return batch;
  }

  /** The tenant's batch; `tenantId` null: any tenant's (an admin key's read). */
  findForTenant(tenantId: string | null, id: string): Promise<BatchRecord | null> {
    return this.repo().findOneBy(tenantId === null ? { id } : { id, tenantId });
  }

  findByIdempotencyKey(tenantId: string, idempotencyKey: string): Promise<BatchRecord | null> {
    return this.repo().findOneBy({ tenantId, idempotencyKey });
  }

  /** One page of a tenant's batches (keyset pagination, see common/pagination). */
  list(tenantId: string | null, page: PageQuery): Promise<Page<BatchRecord>> {
    const query = this.repo().createQueryBuilder('b');
    if (tenantId !== null) query.where('b.tenant_id = :tenantId', { tenantId });
    return fetchPage(query, page, tenantId);
  }

  /**
   * validating -> in_progress, with the input's token estimate (held under the tenant's
   * enqueued-token quota from now on). False when the batch has left `validating` (e.g. it is
   * being cancelled). `tx`: validation's quota transaction.
   */
  async markInProgress(
    id: string,
    total: number,
    model: string | null,
    estimatedTokens: number | null = null,
    tx?: EntityManager,
  ): Promise<boolean> {
    const [rows] = (await (tx ?? this.db).query(
      `UPDATE batches SET status = 'in_progress', in_progress_at = now(), request_total = $2, model = $3,
              estimated_tokens = $4
        WHERE id = $1 AND status = 'validating' RETURNING id`,
      [id, total, model, estimatedTokens],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  /**
   * validating (or cancelling before it had started) -> failed, with the validation errors.
   * False when the batch was in neither status (a retried call).
   */
  async markValidationFailed(
    id: string,
    errors: BatchErrorItem[],
    total: number,
    tx?: EntityManager,
  ): Promise<boolean> {
    const [rows] = (await (tx ?? this.db).query(
      `UPDATE batches SET status = 'failed', failed_at = now(), errors = $2, request_total = $3
        WHERE id = $1 AND status IN ('validating', 'cancelling') RETURNING id`,
      [id, JSON.stringify({ data: errors }), total],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  /** validating | in_progress -> cancelling. Returns the status afterwards, and whether this call changed it. */
  async markCancelling(id: string): Promise<{ status: BatchStatus; changed: boolean }> {
    // A WITH ... SELECT answers plain rows (an UPDATE ... RETURNING would answer [rows, count]).
    const rows = (await this.db.query(
      `WITH upd AS (
         UPDATE batches SET status = 'cancelling', cancelling_at = now()
          WHERE id = $1 AND status IN ('validating', 'in_progress') RETURNING status
       )
       SELECT status, true AS changed FROM upd
       UNION ALL SELECT status, false AS changed FROM batches WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM upd)`,
      [id],
    )) as { status: BatchStatus; changed: boolean }[];
    const row = rows[0];
    if (!row) throw new BatchNotFound(id);
    return { status: row.status, changed: row.changed };
  }

  /** in_progress -> finalizing; false when the batch was not in_progress. */
  async markFinalizing(id: string): Promise<boolean> {
    const [rows] = (await this.db.query(
      `UPDATE batches SET status = 'finalizing', finalizing_at = now() WHERE id = $1 AND status = 'in_progress' RETURNING id`,
      [id],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  /**
   * The terminal transition, with the output and error files and, for a failed batch, why.
   * Runs in finalize's fenced transaction; false when the batch had already ended.
   */
  async markEnded(
    tx: EntityManager,
    id: string,
    status: EndStatus,
    end: { outputFileId: string | null; errorFileId: string | null; errors?: BatchErrorItem[] },
  ): Promise<boolean> {
    const [rows] = (await tx.query(
      `UPDATE batches SET status = $2, ${END_STAMP[status]} = now(), output_file_id = $3, error_file_id = $4,
              errors = coalesce($6::jsonb, errors)
        WHERE id = $1 AND status = ANY($5) RETURNING id`,
      [
        id,
        status,
        end.outputFileId,
        end.errorFileId,
        NON_TERMINAL,
        end.errors ? JSON.stringify({ data: end.errors }) : null,
      ],
    )) as [unknown[], number];
    return rows.length > 0;
  }

  /** Non-terminal batches created before `before`, oldest first (the reconciler's work list). */
  async nonTerminalBefore(before: Date, limit: number): Promise<BatchRecord[]> {
    return this.repo()
      .createQueryBuilder('b')
      .where('b.status IN (:...statuses)', { statuses: NON_TERMINAL })
      .andWhere('b.created_at < :before', { before })
      .orderBy('b.created_at', 'ASC')
      .limit(limit)
      .getMany();
  }
}

export const isTerminal = (status: BatchStatus): boolean => TERMINAL_STATUSES.includes(status);
