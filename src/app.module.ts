import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from './auth/auth.module';
import { BatchesModule } from './batches/api/batches.module';
import { OpenAIErrorFilter } from './common/openai-error';
import { CoreModule } from './core.module';
import { FilesModule } from './files/files.module';
import { HealthController } from './health/health.controller';

@Module({
  imports: [CoreModule, AuthModule, FilesModule, BatchesModule],
  controllers: [HealthController],
  providers: [{ provide: APP_FILTER, useClass: OpenAIErrorFilter }],
})
export class AppModule {}
