import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { OpenAIErrorFilter } from './common/openai-error';
import { CoreModule } from './core.module';
import { HealthController } from './health/health.controller';

@Module({
  imports: [CoreModule],
  controllers: [HealthController],
  providers: [{ provide: APP_FILTER, useClass: OpenAIErrorFilter }],
})
export class AppModule {}
