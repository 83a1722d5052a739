import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuthModule } from '../auth/auth.module';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { OBJECT_STORAGE, ObjectStorage } from '../storage/object-storage';
import { PriceBook } from '../upstreams/prices';
import { routerWithoutCredentials } from '../upstreams/router';
import { CostEstimator } from './cost-estimate';
import { FilePurgeScheduler } from './file-purge.scheduler';
import { FileStore } from './file-store';
import { FileUploadService } from './file-upload.service';
import { FilesController } from './files.controller';

@Module({
  imports: [AuthModule],
  controllers: [FilesController],
  providers: [
    {
      provide: FileStore,
      useFactory: (db: DataSource, storage: ObjectStorage, config: BargeConfig) =>
        new FileStore(db, storage, config),
      inject: [DataSource, OBJECT_STORAGE, CONFIG],
    },
    {
      provide: CostEstimator,
      useFactory: (config: BargeConfig) =>
        new CostEstimator(
          routerWithoutCredentials(config),
          new PriceBook(config.pricing),
          config.pricing.defaultMaxOutputTokens,
        ),
      inject: [CONFIG],
    },
    FileUploadService,
    FilePurgeScheduler,
  ],
  exports: [FileStore],
})
export class FilesModule {}
