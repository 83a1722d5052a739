import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuthModule } from '../auth/auth.module';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { PriceBook } from '../upstreams/prices';
import { UsageStore } from './usage';
import { UsageController } from './usage.controller';

/** Per-tenant figures: the usage route. (The quotas are in CoreModule: uploads and batches need them.) */
@Module({
  imports: [AuthModule],
  controllers: [UsageController],
  providers: [
    {
      provide: UsageStore,
      useFactory: (db: DataSource, config: BargeConfig) => new UsageStore(db, new PriceBook(config.pricing)),
      inject: [DataSource, CONFIG],
    },
  ],
})
export class TenantsModule {}
