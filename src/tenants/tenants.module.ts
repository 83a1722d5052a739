import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuthModule } from '../auth/auth.module';
import { UsageStore } from './usage';
import { UsageController } from './usage.controller';

/** Per-tenant figures: the usage route. (The quotas are in CoreModule: uploads and batches need them.) */
@Module({
  imports: [AuthModule],
  controllers: [UsageController],
  providers: [
    { provide: UsageStore, useFactory: (db: DataSource) => new UsageStore(db), inject: [DataSource] },
  ],
})
export class TenantsModule {}
