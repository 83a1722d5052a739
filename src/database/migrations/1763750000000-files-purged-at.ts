import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Records when a file's stored object was removed. A deleted (or expired) file keeps its row,
 * since batches reference it, and may keep its object while an active batch still reads it;
 * the purge job finds the rows whose object is still to be removed through this column.
 */
export class FilesPurgedAt1763750000000 implements MigrationInterface {
  name = 'FilesPurgedAt1763750000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE files ADD COLUMN purged_at timestamptz`);
    // Deleted rows still holding an object: few at any time, scanned by every purge run.
    await q.query(
      `CREATE INDEX files_unpurged_deleted ON files (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS files_unpurged_deleted`);
    await q.query(`ALTER TABLE files DROP COLUMN IF EXISTS purged_at`);
  }
}
