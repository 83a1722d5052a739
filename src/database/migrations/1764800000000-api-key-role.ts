import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * api_keys.role: `tenant` (every key so far) or `admin`, an operator's key that reads every
 * tenant's batches and usage and cannot act as a tenant (`barge keys create --admin`).
 */
export class ApiKeyRole1764800000000 implements MigrationInterface {
  name = 'ApiKeyRole1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'tenant' CHECK (role IN ('tenant', 'admin'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys DROP COLUMN IF EXISTS role`);
  }
}
