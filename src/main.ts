import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json } from 'express';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { ApiKeyGuard } from './auth/api-key.guard';
import { BargeHttpAdapter, bodyDeadline, bodyParserErrors } from './common/http-server';
import { ConfigError, loadConfig } from './config/config';
import { fileBytes, httpMetrics } from './observability/http-metrics';
import { createLogger, logProcessWarnings } from './observability/logger';
import { Metrics } from './observability/metrics';
import { assignRequestIds } from './observability/request-id';
import { setupOpenApi } from './openapi/openapi';

/** Lines before Nest's logger exists (a bad configuration, a failed start). */
const bootLogger = createLogger({ name: 'barge-api', level: 'info' });

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      bootLogger.error(`barge-api: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule, new BargeHttpAdapter(config.api), {
    bodyParser: false,
    // Nest's own lines wait for nestjs-pino, so the whole process writes one format.
    bufferLogs: true,
  });
  app.useLogger(app.get(NestPinoLogger));
  logProcessWarnings(PinoLogger.root);
  app.set('x-powered-by', false);
  // Order matters: request ids first, so every answer carries one, refusals included; the
  // HTTP metrics next (they time the whole request); the body deadline (it also covers bodies
  // nobody reads), then the API key, so nothing of an unauthenticated request's body is read
  // or parsed, then the parser.
  const metrics = app.get(Metrics);
  app.use(assignRequestIds, httpMetrics(metrics), fileBytes(metrics));
  app.use(bodyDeadline(config.api.bodyTimeoutMs));
  app.use(app.get(ApiKeyGuard).middleware());
  // JSON bodies are small (batch creation); uploads are multipart and streamed, never parsed here.
  app.use(json({ limit: '1mb' }), bodyParserErrors);
  setupOpenApi(app);
  app.enableShutdownHooks();
  await app.listen(config.api.port, config.api.host);
  PinoLogger.root.info(`barge-api: listening on http://${config.api.host}:${config.api.port}`);
}

bootstrap().catch((err) => {
  bootLogger.error({ err }, `barge-api failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
