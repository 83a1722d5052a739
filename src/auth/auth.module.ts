import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyStore } from './api-key-store';

/** API-key authentication. Modules with /v1 controllers import it and use @UseGuards(ApiKeyGuard). */
@Module({
  providers: [
    { provide: ApiKeyStore, useFactory: (db: DataSource) => new ApiKeyStore(db), inject: [DataSource] },
    ApiKeyGuard,
  ],
  exports: [ApiKeyStore, ApiKeyGuard],
})
export class AuthModule {}
