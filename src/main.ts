import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { ConfigError, loadConfig } from './config/config';

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
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    bodyParser: false,
    logger: config.logLevel === 'debug' ? ['debug', 'log', 'warn', 'error'] : ['log', 'warn', 'error'],
  });
  // JSON bodies are small (batch creation); uploads are multipart and streamed, never parsed here.
  app.useBodyParser('json', { limit: '1mb' });
  app.set('x-powered-by', false);
  app.enableShutdownHooks();
  await app.listen(config.api.port, config.api.host);
  Logger.log(`listening on http://${config.api.host}:${config.api.port}`, 'barge-api');
}

bootstrap().catch((err) => {
  console.error('barge-api failed to start:', err);
  process.exit(1);
});
