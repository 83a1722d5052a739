import { Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { tenantOf } from '../auth/current-tenant.decorator';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { apiLoggerParams } from './api-logging';
import { BatchProgressCensus } from './batch-census';
import { Metrics } from './metrics';
import { MetricsController } from './metrics.controller';

/**
 * The API's logs and metrics: nestjs-pino (one JSON line per request, the request id on every
 * line about it), the process's one Metrics (injected where the API makes metrics), the batch
 * census behind the batch gauges, and GET /metrics. main.ts puts the request-id and HTTP
 * metrics middleware in front of everything else.
 */
@Global()
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [CONFIG],
      useFactory: (config: BargeConfig) => apiLoggerParams(config, (req) => tenantOf(req)?.id ?? null),
    }),
  ],
  controllers: [MetricsController],
  providers: [
    { provide: Metrics, useFactory: () => new Metrics(undefined, { process: 'api', defaults: true }) },
    {
      provide: BatchProgressCensus,
      useFactory: (db: DataSource, metrics: Metrics) => {
        const census = new BatchProgressCensus(db);
        metrics.watchBatches(() => census.census());
        return census;
      },
      inject: [DataSource, Metrics],
    },
  ],
  exports: [Metrics],
})
export class ObservabilityModule {}
