import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createActivities } from '../activities';
import { ByteBudget } from './batches/dispatch/byte-budget';
import { readChunk } from './batches/dispatch/chunk-reader';
import { Finalizer } from './batches/finalize/finalizer';
import { TenantQuotas } from './tenants/tenant-quotas';
import { ProviderKeyStore } from './tenants/provider-keys';
import { SecretBox } from './common/secret-box';
import { Reconciler } from './batches/reconcile/reconciler';
import { batchWorkflowStatus, startBatchWorkflow } from './batches/start-batch-workflow';
import { BatchRepository } from './batches/store/batch.repository';
import { PgFinalizeStore } from './batches/store/finalize.store';
import { WorkRepository } from './batches/store/work.repository';
import { ConfigError, loadConfig, type BargeConfig } from './config/config';
import { connectDatabase } from './database/data-source';
import { FileStore } from './files/file-store';
import { MinioStorage } from './storage/minio-storage';
import type { ObjectStorage } from './storage/object-storage';
import type { DataSource } from 'typeorm';
import { PoisonInput } from './common/failures';
import { createLogger, logProcessWarnings, type Logger } from './observability/logger';
import { Metrics } from './observability/metrics';
import { freeLoopbackPort, scrapeText, startMetricsServer } from './observability/metrics-server';
import { TemporalLogger } from './observability/temporal-logger';
import { systemClock } from './upstreams/clock';
import { HttpUpstreamGateway, newWorkerId } from './upstreams/gateway';
import { Maintenance } from './worker/maintenance';
import { createWebhookWorker } from './webhooks/webhook-worker';

/** Lines before the configuration (and so the level) is known; also the last words of a crash. */
let logger: Logger = createLogger({ name: 'barge-worker', level: 'info' });

/** Temporal core's own lines: the level asked for, but its debug is only for debugging Temporal. */
const CORE_LEVEL = { debug: 'INFO', info: 'WARN', warn: 'WARN', error: 'ERROR' } as const;

/**
 * The worker process: runs batch workflows and their activities, and the periodic
 * maintenance (reconciler, sweeps). Its only HTTP server is the metrics port. Two task queues,
 * so slow upstream calls never starve workflow bookkeeping. Every dependency is built here,
 * once, and injected: one configuration, one logger, one Metrics.
 */
async function main(): Promise<void> {
  let config: BargeConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.error(`barge-worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  logger = createLogger({ name: 'barge-worker', level: config.logLevel });
  logProcessWarnings(logger);
  const metrics = new Metrics(undefined, { process: 'worker', defaults: true });
  const exportsMetrics = config.worker.metricsPort > 0;
  // Temporal's exporter binds an address of its own; it is scraped into our /metrics, so
  // Prometheus has one target per worker and the exporter never leaves loopback.
  const temporalMetrics = exportsMetrics ? `127.0.0.1:${await freeLoopbackPort()}` : null;
  Runtime.install({
    logger: new TemporalLogger(logger.child({ component: 'temporal' })),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: CORE_LEVEL[config.logLevel] }), forward: {} },
      ...(temporalMetrics && {
        metrics: {
          prometheus: {
            bindAddress: temporalMetrics,
            countersTotalSuffix: true,
            unitSuffix: true,
            useSecondsForDurations: true,
          },
        },
      }),
    },
  });
  const metricsServer = exportsMetrics
    ? await startMetricsServer({
        host: config.worker.metricsHost,
        port: config.worker.metricsPort,
        metrics,
        extra: scrapeText(`http://${temporalMetrics}/metrics`),
        logger,
      })
    : null;

  const workerId = newWorkerId();
  // Named by its worker id in Postgres, which tells the other workers this one is alive.
  const appName = `barge-worker ${workerId}`.slice(0, 63);
  const db = await connectDatabase(config, appName);
  const storage = new MinioStorage(config.storage);
  await storage.ensureBucket();
  const files = new FileStore(db, storage, config);
  const batches = new BatchRepository(db);
  const work = new WorkRepository(db);
  // Answers being read, waiting to be recorded, and written to output files: one budget for
  // every upstream, chunk and finalize.
  const answerMemory = new ByteBudget(config.worker.maxAnswerBytesInMemory);
  const gateway = HttpUpstreamGateway.forDatabase(config, db, {
    answerMemory,
    workerId,
    appName,
    metrics,
    logger: logger.child({ component: 'upstreams' }),
  });
  const finalizer = buildFinalizer(db, batches, work, files, storage, metrics, answerMemory);
  const activities = createActivities({
    config,
    db,
    batches,
    work,
    files,
    storage,
    gateway,
    finalizer,
    quotas: new TenantQuotas(db, config.quotas),
    providerKeys: new ProviderKeyStore(db, SecretBox.fromConfig(config.secrets)),
    chunkMemory: new ByteBudget(config.worker.maxChunkBytesInMemory),
    answerMemory,
    clock: systemClock,
    metrics,
    logger,
  });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const temporal = new Client({ connection: clientConnection, namespace: config.temporal.namespace });

  // A bundle prepared at build time starts in milliseconds; otherwise bundle now (a few seconds).
  const prebuilt = join(__dirname, '..', 'workflow-bundle.js');
  const workflowSource = existsSync(prebuilt)
    ? { workflowBundle: { codePath: prebuilt } }
    : { workflowsPath: require.resolve('../workflows') };
  const shutdownGraceTime = config.temporal.shutdownGraceSeconds * 1000;

  const orchestration = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource,
    activities,
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentBookkeeping,
    shutdownGraceTime,
  });
  const upstream = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.upstreamTaskQueue,
    activities,
    // Chunks mostly wait on upstream calls; their memory is bounded by chunkMaxBytes each.
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentChunks,
    shutdownGraceTime,
    // Cancellation reaches an activity only with a heartbeat's answer; by default heartbeats
    // wait 0.8 x heartbeatTimeout (16 s), so a cancelled batch would keep calling upstream.
    maxHeartbeatThrottleInterval: '1 second',
  });
  // Webhook deliveries: their own task queue and concurrency, and the relay of new events.
  const webhooks = await createWebhookWorker({
    config,
    db,
    connection,
    temporal,
    workflowSource,
    shutdownGraceTime,
    logger,
  });

  const maintenance = new Maintenance(
    db,
    new Reconciler(
      {
        candidates: (before, limit) => batches.nonTerminalBefore(before, limit),
        workflowStatus: (id) => batchWorkflowStatus(temporal, id),
        startWorkflow: (batch) => startBatchWorkflow(temporal, config, batch),
        finalize: (request) => finalizer.finalize(request),
        now: () => new Date(),
      },
      config.worker.reconcileGraceMs,
      metrics,
    ),
    work,
    storage,
    config.worker.reconcileIntervalMs,
    logger.child({ component: 'maintenance' }),
  );
  maintenance.start();
  webhooks.relay.begin();

  logger.info(
    {
      worker_id: workerId,
      task_queues: [
        config.temporal.taskQueue,
        config.temporal.upstreamTaskQueue,
        config.temporal.webhookTaskQueue,
      ],
      metrics: metricsServer?.url ?? null,
    },
    `barge-worker: polling ${config.temporal.taskQueue}, ${config.temporal.upstreamTaskQueue} and ${config.temporal.webhookTaskQueue} on ${config.temporal.address}`,
  );
  // Runtime turns SIGINT/SIGTERM into a graceful shutdown: polling stops, in-flight activities
  // get shutdownGraceTime to finish (chunks drain: calls in flight end and are recorded).
  await Promise.all([orchestration.run(), upstream.run(), webhooks.worker.run()]);
  await webhooks.relay.stop();
  await maintenance.stop();
  await gateway.close();
  await clientConnection.close();
  await connection.close();
  await db.destroy();
  await metricsServer?.close();
  logger.info('barge-worker: stopped');
}

function buildFinalizer(
  db: DataSource,
  batches: BatchRepository,
  work: WorkRepository,
  files: FileStore,
  storage: ObjectStorage,
  metrics: Metrics,
  memory: ByteBudget,
): Finalizer {
  return new Finalizer({
    store: new PgFinalizeStore(db, batches, work, files, memory),
    readChunk: async (batch, chunk, skip) => {
      const input = await files.inputObject(batch.inputFileId);
      if (!input) throw new PoisonInput(`the input file ${batch.inputFileId} of ${batch.id} is gone`);
      return readChunk(storage, input.objectKey, chunk, skip);
    },
    stage: async (batch, file, attempt, source) => {
      const stored = await files.upload(batch.tenantId, source, {
        id: file.id,
        attempt,
        contentType: 'application/jsonl',
      });
      return { id: stored.id, objectKey: stored.objectKey, bytes: stored.bytes, filename: file.filename };
    },
    discard: (file) => storage.remove(file.objectKey).catch(() => undefined),
    now: () => new Date(),
    metrics,
  });
}

main().catch((err) => {
  logger.error({ err }, `barge-worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
