import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The fingerprint of the create request an Idempotency-Key was first used with, so the same key
 * with a different request answers 409 (src/batches/api/idempotency.ts). Older rows keep NULL and
 * are replayed as before.
 */
export class BatchIdempotencyFingerprint1764100000000 implements MigrationInterface {
  name = 'BatchIdempotencyFingerprint1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE batches ADD COLUMN idempotency_fingerprint text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE batches DROP COLUMN IF EXISTS idempotency_fingerprint`);
  }
}
