import { Client, Connection, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { batchWorkflow, BatchWorkflowInput } from '../../workflows/batch.workflow';
import { historyToProtoJson } from './histories';
import { waitFor } from '../support/stack';
import { createTimeSkippingEnv, startWorker, type RunningWorker } from '../support/time-skipping';
import { FakeActivities, type FakeBatch } from './fake-activities';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const { EventType } = temporal.api.enums.v1;

export const HOUR = 60 * 60 * 1000;

/** The name of an event's type, as the CLI prints it without its prefix: `ActivityTaskScheduled`. */
export function eventName(event: HistoryEvent): string {
  return EventType[event.eventType ?? 0]
    .replace(/^EVENT_TYPE_/, '')
    .replace(/(^|_)([A-Z]+)/g, (_, _u, w: string) => w[0] + w.slice(1).toLowerCase());
}

/** No workflow task is pending: the workflow waits for something (an activity, a timer, a message). */
export function isIdle(events: HistoryEvent[]): boolean {
  const lastTask = events.filter((e) => eventName(e).startsWith('WorkflowTask')).at(-1);
  return lastTask !== undefined && eventName(lastTask) === 'WorkflowTaskCompleted';
}

function payloadValue(payloads: temporal.api.common.v1.IPayloads | null | undefined): unknown {
  const data = payloads?.payloads?.[0]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
}

/** The activities a run scheduled, in order, with their inputs. */
export function scheduledActivities(
  events: HistoryEvent[],
): { at: number; eventId: number; name: string; input: Record<string, unknown> }[] {
  return events.flatMap((e, at) => {
    const a = e.activityTaskScheduledEventAttributes;
    return a
      ? [
          {
            at,
            eventId: Number(e.eventId),
            name: a.activityType?.name ?? '',
            input: payloadValue(a.input) as Record<string, unknown>,
          },
        ]
      : [];
  });
}

/** Chunk indices a run scheduled, in order. */
export function scheduledChunks(events: HistoryEvent[]): number[] {
  return scheduledActivities(events)
    .filter((a) => a.name === 'dispatchChunk')
    .map((a) => a.input.chunkIndex as number);
}

/** Chunk indices whose activity completed in this run, in order. */
export function completedChunks(events: HistoryEvent[]): number[] {
  const byEventId = new Map(scheduledActivities(events).map((a) => [a.eventId, a]));
  return events.flatMap((e) => {
    const scheduled = byEventId.get(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1));
    return scheduled?.name === 'dispatchChunk' ? [scheduled.input.chunkIndex as number] : [];
  });
}

/** The input a run handed to the next one at continue-as-new, if it continued. */
export function continuedWith(events: HistoryEvent[]): BatchWorkflowInput | undefined {
  return payloadValue(events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.input) as
    BatchWorkflowInput | undefined;
}

/** Positions of the events of a type, in order. */
export function positionsOf(events: HistoryEvent[], name: string): number[] {
  return events.flatMap((e, i) => (eventName(e) === name ? [i] : []));
}

/**
 * Workflow tasks completed strictly between two positions: 0 means what happened at both
 * reached the workflow in one workflow task (one activation).
 */
export function tasksCompletedBetween(events: HistoryEvent[], from: number, to: number): number {
  return positionsOf(events, 'WorkflowTaskCompleted').filter((i) => i > from && i < to).length;
}

/** One run of a batch workflow, with its history. */
export interface Run {
  runId: string;
  history: History;
}

export interface ScenarioOptions {
  /** Completion window from the start, on the test server's clock (default 24 hours). */
  windowMs?: number;
  window?: number;
  maxWindow?: number;
  /** Start with this input's continue-as-new state instead of validating. */
  input?: Partial<BatchWorkflowInput>;
  /**
   * No worker polls the upstream queue: chunks are scheduled and stay there, in flight for the
   * workflow, until it cancels them. (A running activity would have to heartbeat every 20
   * seconds of skipped time; a scheduled one has no heartbeat timeout.)
   */
  parkChunks?: boolean;
  /**
   * Not recorded as a replay fixture (BARGE_RECORD_HISTORIES): for a scenario that shows a
   * known bug, whose fix changes the history.
   */
  notAFixture?: boolean;
}

/**
 * Batch workflows on Temporal's time-skipping test server, with the real workflow code and
 * mocked activities. Each scenario gets a server of its own (one starts in about 150 ms): the
 * server's clock is global, and a run that ends with activities open leaves time-skipping
 * locks behind in the test server (see Scenario.skipTo).
 */
export class BatchScenarios {
  /** Every run of every scenario, for the replay check at the end of the file. */
  readonly runs: { scenario: string; workflowId: string; run: Run }[] = [];
  private readonly open = new Set<Scenario>();
  private count = 0;

  /** Starts a batch: a server, the fake batch, workers on the batch's own task queues, the workflow. */
  async start(name: string, fake: FakeBatch, options: ScenarioOptions = {}): Promise<Scenario> {
    const slug = `${++this.count}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.slice(0, 60);
    const env = await createTimeSkippingEnv();
    const fakes = new FakeActivities(() => env.currentTimeMs());
    const batchId = `batch_${slug}`;
    fakes.add(batchId, fake);
    const taskQueue = `wf-${slug}`;
    const upstreamTaskQueue = `up-${slug}`;
    const scenario = new Scenario(this, env, fakes, slug, taskQueue, !options.notAFixture);
    this.open.add(scenario);
    // Workflows and bookkeeping activities share the task queue, on workers of their own, so the
    // workflow worker can stop (pauseWorkflows) while activities go on.
    await scenario.resumeWorkflows();
    await scenario.addWorker({ taskQueue, activities: fakes.activities() });
    if (!options.parkChunks)
      await scenario.addWorker({ taskQueue: upstreamTaskQueue, activities: fakes.activities() });
    const startedAt = await env.currentTimeMs();
    scenario.input = {
      batchId,
      expiresAt: startedAt + (options.windowMs ?? 24 * HOUR),
      window: options.window ?? 4,
      maxWindow: options.maxWindow,
      upstreamTaskQueue,
      ...options.input,
    };
    scenario.handle = await env.client.workflow.start<typeof batchWorkflow>('batchWorkflow', {
      workflowId: batchId,
      taskQueue,
      args: [scenario.input],
    });
    return scenario;
  }

  /** Closes every scenario started (after each test). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.open].map((s) => s.close()));
  }

  /** @internal */
  closed(scenario: Scenario, runs: Run[]): void {
    this.open.delete(scenario);
    this.runs.push(...runs.map((run) => ({ scenario: scenario.slug, workflowId: scenario.batchId, run })));
  }
}

export class Scenario {
  input!: BatchWorkflowInput;
  handle!: WorkflowHandleWithFirstExecutionRunId<typeof batchWorkflow>;
  private workflowWorker: RunningWorker | undefined;
  private readonly workers: RunningWorker[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly scenarios: BatchScenarios,
    readonly env: TestWorkflowEnvironment,
    private readonly fakes: FakeActivities,
    readonly slug: string,
    private readonly taskQueue: string,
    private readonly fixture: boolean,
  ) {}

  get batchId(): string {
    return this.input.batchId;
  }

  calls(activity?: Parameters<FakeActivities['callsOf']>[1]) {
    return this.fakes.callsOf(this.batchId, activity);
  }

  async addWorker(options: Parameters<typeof startWorker>[1]): Promise<void> {
    this.workers.push(await startWorker(this.env, options));
  }

  /**
   * Stops the workflow worker: whatever happens meanwhile (activities ending, signals, updates)
   * reaches the workflow together, in one workflow task, once `resumeWorkflows()` starts another.
   */
  async pauseWorkflows(): Promise<void> {
    await this.workflowWorker?.stop();
    this.workflowWorker = undefined;
  }

  async resumeWorkflows(): Promise<void> {
    this.workflowWorker = await startWorker(this.env, { taskQueue: this.taskQueue, workflows: true });
  }

  /** A run's history (the current run's without `runId`). */
  async history(runId?: string): Promise<History> {
    // Through a connection of its own: histories grown past continue-as-new's 4 MiB exceed
    // grpc-js's default message limit.
    this.historyConnection ??= Connection.connect({
      address: this.env.address,
      channelArgs: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    });
    const client = new Client({ connection: await this.historyConnection, namespace: this.env.namespace });
    return client.workflow.getHandle(this.batchId, runId).fetchHistory();
  }
  private historyConnection: Promise<Connection> | undefined;

  /** Waits for a condition on the current run's history. */
  async waitForHistory(what: string, ok: (events: HistoryEvent[]) => boolean): Promise<HistoryEvent[]> {
    return waitFor(what, async () => {
      const events = (await this.history()).events ?? [];
      return ok(events) ? events : undefined;
    });
  }

  /**
   * Lets the server's clock skip while `parked` chunk activities stay scheduled, and skips it
   * to `at`. The server holds a time-skipping lock for each scheduled activity until it ends;
   * one cancelled before it started never gives its lock back (test server 1.40.0,
   * TestWorkflowMutableStateImpl.processRequestCancelActivityTask), so they are released here
   * once, for good: only for activities the workflow will cancel.
   */
  async skipTo(at: number, parked: number): Promise<void> {
    const testService = this.env.connection.testService!;
    for (let i = 0; i < parked; i++) await testService.unlockTimeSkipping({});
    await this.env.sleep(at - (await this.env.currentTimeMs()));
  }

  /** The workflow's result (the time-skipping client lets time skip while it waits). */
  async result(): Promise<string> {
    let answered = false;
    // The test server never answers a wait on a run that continued as new (handle.result() on
    // the first run), so the last run is also found by describing the workflow.
    const lastRun = waitFor(
      'the batch workflow to close',
      async () => {
        if (answered) return 'answered';
        const { status, runId } = await this.env.client.workflow.getHandle(this.batchId).describe();
        return status.name !== 'RUNNING' && status.name !== 'CONTINUED_AS_NEW' && runId;
      },
      60_000,
    ).then((runId) =>
      answered
        ? new Promise<never>(() => {})
        : this.env.client.workflow.getHandle(this.batchId, runId).result(),
    );
    try {
      return await Promise.race([this.handle.result(), lastRun]);
    } finally {
      answered = true;
    }
  }

  /** Every run of this batch's workflow, first to last (following continue-as-new). */
  async runs(): Promise<Run[]> {
    const runs: Run[] = [];
    let runId: string | undefined = this.handle.firstExecutionRunId;
    while (runId) {
      const history = await this.history(runId);
      runs.push({ runId, history });
      const last = history.events?.at(-1);
      runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    return runs;
  }

  /** Stops the workers, keeps the histories for the replay check, stops the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let runs: Run[] = [];
      try {
        await Promise.all([this.workflowWorker?.stop(), ...this.workers.map((w) => w.stop())]);
        runs = this.handle ? await this.runs() : [];
        if (this.fixture) recordFixtures(this.slug, runs);
      } finally {
        this.scenarios.closed(this, runs);
        await (await this.historyConnection)?.close();
        await this.env.teardown();
      }
    })();
    return this.closing;
  }
}

/**
 * Writes a scenario's runs as replay fixtures when BARGE_RECORD_HISTORIES names a folder (see
 * test/fixtures/histories/README.md): proto3 JSON, gzipped past 1 MB (the continue-as-new
 * scenarios pad their history to 4 MiB with compressible bytes).
 */
function recordFixtures(slug: string, runs: Run[]): void {
  const dir = process.env.BARGE_RECORD_HISTORIES;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  runs.forEach((run, i) => {
    const name = join(dir, `${slug.replace(/^\d+-/, '')}-${i}.json`);
    const text = historyToProtoJson(run.history);
    if (text.length > 1_000_000) writeFileSync(`${name}.gz`, gzipSync(text, { level: 9 }));
    else writeFileSync(name, text);
  });
}
