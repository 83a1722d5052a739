import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json } from 'express';
import { AppModule } from './app.module';
import { ApiKeyGuard } from './auth/api-key.guard';
import { BargeHttpAdapter, bodyDeadline, bodyParserErrors } from './common/http-server';
import { ConfigError, loadConfig } from './config/config';
import { setupOpenApi } from './openapi/openapi';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`barge-api: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule, new BargeHttpAdapter(config.api), {
    bodyParser: false,
    logger: config.logLevel === 'debug' ? ['debug', 'log', 'warn', 'error'] : ['log', 'warn', 'error'],
  });
  app.set('x-powered-by', false);
  // Order matters: the body deadline first (it also covers bodies nobody reads), then the API
  // key, so nothing of an unauthenticated request's body is read or parsed, then the parser.
  app.use(bodyDeadline(config.api.bodyTimeoutMs));
  app.use(app.get(ApiKeyGuard).middleware());
  // JSON bodies are small (batch creation); uploads are multipart and streamed, never parsed here.
  app.use(json({ limit: '1mb' }), bodyParserErrors);
  setupOpenApi(app);
  app.enableShutdownHooks();
  await app.listen(config.api.port, config.api.host);
  Logger.log(`listening on http://${config.api.host}:${config.api.port}`, 'barge-api');
}

bootstrap().catch((err) => {
  console.error('barge-api failed to start:', err);
  process.exit(1);
});
