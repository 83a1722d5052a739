import type { Logger } from '../observability/logger';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { DataSource } from 'typeorm';
import { createWebhookActivities } from '../../activities/webhook.activity';
import { SecretBox } from '../common/secret-box';
import type { BargeConfig } from '../config/config';
import { WebhookDeliveries } from './delivery';
import { startWebhookDelivery, WebhookEventRelay } from './event-relay';
import { ReceiverPolicy } from './receiver-policy';
import { WebhookSender } from './sender';
import { WebhookRepository } from './webhook.repository';

/**
 * The worker process's webhook side: a Temporal worker on the webhook task queue (the delivery
 * workflows and the activities that call receivers, with a concurrency of their own) and the
 * relay that starts a workflow for each new event.
 */
export async function createWebhookWorker(options: {
  config: BargeConfig;
  db: DataSource;
  connection: NativeConnection;
  temporal: Client;
  workflowSource: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;
  shutdownGraceTime: number;
  logger: Logger;
}): Promise<{ worker: Worker; relay: WebhookEventRelay }> {
  const { config, db } = options;
  const repo = new WebhookRepository(db);
  const sender = new WebhookSender(new ReceiverPolicy(config.webhooks), {
    timeoutMs: config.webhooks.timeoutMs,
  });
  const deliveries = new WebhookDeliveries(repo, SecretBox.fromConfig(config.secrets), sender);
  const worker = await Worker.create({
    connection: options.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.webhookTaskQueue,
    ...options.workflowSource,
    activities: createWebhookActivities(deliveries),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentWebhookDeliveries,
    shutdownGraceTime: options.shutdownGraceTime,
  });
  const relay = new WebhookEventRelay(
    repo,
    (eventId) => startWebhookDelivery(options.temporal, config, eventId),
    config.webhooks.relayIntervalMs,
    options.logger.child({ component: 'webhooks' }),
  );
  return { worker, relay };
}
