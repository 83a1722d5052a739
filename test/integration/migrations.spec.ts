import { DataSource } from 'typeorm';
import { connectDatabase, createDataSource } from '../../src/database/data-source';
import { MIGRATIONS } from '../../src/database/migrations';
import { stackConfig } from '../support/stack';

/** Migrations against a real Postgres, in a database of their own. */
describe('database migrations', () => {
  const base = stackConfig();
  const dbName = `barge_migrations_${process.pid}_${Date.now()}`;
  const url = base.postgres.url.replace(/\/[^/]+$/, `/${dbName}`);
  const config = { ...base, postgres: { ...base.postgres, url } };
  let admin: DataSource;

  beforeAll(async () => {
    admin = createDataSource(base, 'barge-test');
    await admin.initialize();
    await admin.query(`CREATE DATABASE ${dbName}`);
  });

  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.destroy();
  });

  it('creates the schema on an empty database, and runs again without change', async () => {
    // Two processes starting at once (API and worker) must not race.
    const [a, b] = await Promise.all([connectDatabase(config, 'test-a'), connectDatabase(config, 'test-b')]);
    const tables = await a.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
    );
    expect(tables.map((t: { table_name: string }) => t.table_name)).toEqual(
      expect.arrayContaining(['api_keys', 'batch_chunks', 'batches', 'files', 'request_results', 'tenants']),
    );
    const applied = await a.query(`SELECT name FROM migrations ORDER BY id`);
    expect(applied.map((m: { name: string }) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect(await a.showMigrations()).toBe(false);
    await Promise.all([a.destroy(), b.destroy()]);

    const again = await connectDatabase(config, 'test-c');
    expect(await again.query(`SELECT count(*)::int AS n FROM migrations`)).toEqual([
      { n: MIGRATIONS.length },
    ]);
    await again.destroy();
  });

  it('enforces the eight batch statuses in the schema', async () => {
    const ds = await connectDatabase(config, 'test-d');
    await ds.query(`INSERT INTO tenants (id, name) VALUES ('t1', 't1')`);
    await ds.query(
      `INSERT INTO files (id, tenant_id, filename, purpose, bytes, object_key, created_at) VALUES ('f1','t1','a.jsonl','batch',1,'k',now())`,
    );
    await expect(
      ds.query(
        `INSERT INTO batches (id, tenant_id, endpoint, input_file_id, completion_window, status, created_at, expires_at)
         VALUES ('b1','t1','/v1/chat/completions','f1','24h','running',now(),now())`,
      ),
    ).rejects.toThrow(/check constraint/);
    await ds.destroy();
  });

  it('reverts cleanly', async () => {
    const ds = await connectDatabase(config, 'test-e');
    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration();
    const tables = await ds.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    expect(tables.map((t: { table_name: string }) => t.table_name)).toEqual(['migrations']);
    await ds.destroy();
  });
});
