import { Module } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { AuthModule } from './auth/auth.module';
import { BatchesModule } from './batches/api/batches.module';
import { OpenAIErrorFilter } from './common/openai-error';
import { ConsoleModule } from './console/console.module';
import { CoreModule } from './core.module';
import { FilesModule } from './files/files.module';
import { HealthController } from './health/health.controller';
import { ObservabilityModule } from './observability/observability.module';
import { WebhooksModule } from './webhooks/webhook-endpoints.controller';
import { TenantsModule } from './tenants/tenants.module';

@Module({
  // DiscoveryModule: the error filter reads the route table to answer 405 for a wrong method.
  imports: [
    CoreModule,
    ObservabilityModule,
    AuthModule,
    FilesModule,
    BatchesModule,
    WebhooksModule,
    TenantsModule,
    DiscoveryModule,
    ConsoleModule,
  ],
  controllers: [HealthController],
  providers: [{ provide: APP_FILTER, useClass: OpenAIErrorFilter }],
})
export class AppModule {}
