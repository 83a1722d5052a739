import { DataSource } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

export function createDataSource(config: BargeConfig, applicationName: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url: config.postgres.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    migrationsRun: false,
    extra: {
      max: config.postgres.poolSize,
      application_name: applicationName,
      connectionTimeoutMillis: 5_000,
    },
  });
}

// Arbitrary constant: the key of the advisory lock that serialises migration runs.
const MIGRATION_LOCK = 73_112_026;

/** Connects and applies pending migrations. */
export async function connectDatabase(config: BargeConfig, applicationName: string): Promise<DataSource> {
  const dataSource = createDataSource(config, applicationName);
  await dataSource.initialize();
  // The API and the worker start together; TypeORM does not lock, so two runs would race.
  const lock = dataSource.createQueryRunner();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.release();
  }
  return dataSource;
}
