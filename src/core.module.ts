import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Client } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { BatchRepository } from './batches/store/batch.repository';
import { BargeConfig, loadConfig } from './config/config';
import { connectDatabase } from './database/data-source';
import { MinioStorage } from './storage/minio-storage';
import { OBJECT_STORAGE } from './storage/object-storage';
import { createTemporalClient } from './temporal/temporal-client';
import { TenantQuotas } from './tenants/tenant-quotas';
import { ProviderKeyStore } from './tenants/provider-keys';
import { SecretBox } from './common/secret-box';

export const CONFIG = Symbol('BargeConfig');

/** The API process's connections to the outside (configuration, Postgres, storage, Temporal) and its repositories. */
@Global()
@Module({
  providers: [
    { provide: CONFIG, useFactory: () => loadConfig() },
    {
      provide: DataSource,
      useFactory: (config: BargeConfig) => connectDatabase(config, 'barge-api'),
      inject: [CONFIG],
    },
    {
      provide: OBJECT_STORAGE,
      useFactory: async (config: BargeConfig) => {
        const storage = new MinioStorage(config.storage);
        await storage.ensureBucket();
        return storage;
      },
      inject: [CONFIG],
    },
    {
      provide: Client,
      useFactory: (config: BargeConfig) => createTemporalClient(config.temporal),
      inject: [CONFIG],
    },
    {
      provide: BatchRepository,
      useFactory: (db: DataSource) => new BatchRepository(db),
      inject: [DataSource],
    },
    {
      provide: TenantQuotas,
      useFactory: (db: DataSource, config: BargeConfig) => new TenantQuotas(db, config.quotas),
      inject: [DataSource, CONFIG],
    },
    {
      provide: ProviderKeyStore,
      useFactory: (db: DataSource, config: BargeConfig) =>
        new ProviderKeyStore(db, SecretBox.fromConfig(config.secrets)),
      inject: [DataSource, CONFIG],
    },
  ],
  exports: [CONFIG, DataSource, OBJECT_STORAGE, Client, BatchRepository, TenantQuotas, ProviderKeyStore],
})
export class CoreModule implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(Client) private readonly temporal: Client,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.temporal.connection.close().catch(() => undefined);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
