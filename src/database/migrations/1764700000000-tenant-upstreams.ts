import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * tenants.allowed_upstreams: the upstreams a tenant may pin (x-barge-provider,
 * metadata.barge_provider); NULL: every configured one (`barge tenants set --upstreams`).
 */
export class TenantUpstreams1764700000000 implements MigrationInterface {
  name = 'TenantUpstreams1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants ADD COLUMN allowed_upstreams text[]`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS allowed_upstreams`);
  }
}
