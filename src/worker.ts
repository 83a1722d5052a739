import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createActivities } from '../activities';
import { ConfigError, loadConfig } from './config/config';
import { connectDatabase } from './database/data-source';
import { FileStore } from './files/file-store';
import { MinioStorage } from './storage/minio-storage';
import { HttpUpstreamGateway } from './upstreams/gateway';

/**
 * The worker process: runs batch workflows and their activities. No HTTP server.
 * Two task queues, so slow upstream calls never starve workflow bookkeeping.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`barge-worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  Runtime.install({
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });

  const db = await connectDatabase(config, 'barge-worker');
  const storage = new MinioStorage(config.storage);
  await storage.ensureBucket();
  const files = new FileStore(db, storage, config);
  const gateway = new HttpUpstreamGateway(config, db);
  const activities = createActivities({ config, db, storage, files, gateway });
  const connection = await NativeConnection.connect({ address: config.temporal.address });

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
    shutdownGraceTime,
  });
  const upstream = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.upstreamTaskQueue,
    activities,
    shutdownGraceTime,
    // Cancellation reaches an activity only with a heartbeat's answer; by default heartbeats
    // wait 0.8 x heartbeatTimeout (16 s), so a cancelled batch would keep calling upstream.
    maxHeartbeatThrottleInterval: '1 second',
  });

  console.log(
    `barge-worker: polling ${config.temporal.taskQueue} and ${config.temporal.upstreamTaskQueue} on ${config.temporal.address}`,
  );
  // Runtime turns SIGINT/SIGTERM into a graceful shutdown: polling stops, in-flight activities
  // get shutdownGraceTime to finish (chunks record results as they go, so a retry resumes).
  await Promise.all([orchestration.run(), upstream.run()]);
  await gateway.close();
  await connection.close();
  await db.destroy();
  console.log('barge-worker: stopped');
}

main().catch((err) => {
  console.error('barge-worker failed:', err);
  process.exit(1);
});
