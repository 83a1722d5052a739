import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { InfrastructureFault, PoisonInput } from '../../src/common/failures';
import type { ChunkReport } from '../../src/batches/dispatch/chunk-run';
import { cancelBatchSignal, cancelUpdate, NOT_CANCELLABLE } from '../../workflows/batch.definitions';
import { BatchStatusKey, ModelKey } from '../../workflows/search-attributes';
import { waitFor } from '../support/stack';
import { currentWorkflowBundle } from '../support/time-skipping';
import { Gate, type ActivityCall } from './fake-activities';
import {
  BatchScenarios,
  completedChunks,
  continuedWith,
  eventName,
  HOUR,
  isIdle,
  positionsOf,
  scheduledActivities,
  scheduledChunks,
  tasksCompletedBetween,
  type Scenario,
} from './scenarios';

/**
 * The batch workflow's paths that take hours or races to reach, on Temporal's time-skipping
 * test server with the real workflow code and mocked activities (test/workflows/fake-activities.ts).
 * Times asserted are the test server's clock, never the wall clock.
 */

type CancelKind = 'update' | 'signal' | 'temporal';
const CANCEL_KINDS: CancelKind[] = ['update', 'signal', 'temporal'];

/** The API's cancel (the Update), the first release's (the signal), or the Web UI's (Temporal's own). */
async function cancel(s: Scenario, kind: CancelKind): Promise<{ status: string } | undefined> {
  if (kind === 'update') return s.handle.executeUpdate(cancelUpdate);
  if (kind === 'signal') await s.handle.signal(cancelBatchSignal);
  else await s.handle.cancel();
  return undefined;
}

const running = (calls: ActivityCall[]) => calls.filter((c) => !c.end);
const indices = (calls: ActivityCall[]) => calls.map((c) => c.chunkIndex!).sort((a, b) => a - b);
const only = <T>(items: T[]): T => {
  expect(items).toHaveLength(1);
  return items[0];
};
const dispatchScheduled = (events: temporal.api.history.v1.IHistoryEvent[]) =>
  scheduledActivities(events).filter((a) => a.name === 'dispatchChunk').length;

/** Big enough that four chunk results pass the test server's 4 MiB history size, where it suggests continue-as-new. */
const PADDING = 'x'.repeat(1_100_000);
const paddedReport = (): ChunkReport =>
  Object.assign({ end: 'done', recorded: 10, unanswered: 0 } as ChunkReport, { padding: PADDING });

describe('batch workflow on the time-skipping test server', () => {
  const scenarios = new BatchScenarios();
  beforeAll(() => currentWorkflowBundle(), 60_000);
  afterEach(() => scenarios.closeAll());

  it('validates, dispatches every chunk once through the window, and finalizes as completed', async () => {
    const s = await scenarios.start('completes', { chunkCount: 7 }, { window: 3 });
    expect(await s.result()).toBe('completed');

    expect(indices(s.calls('dispatchChunk'))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const finalize = only(s.calls('finalizeBatch'));
    expect(finalize.finalize).toEqual({ batchId: s.batchId, reason: 'completed' });
    expect(s.calls('markCancelling')).toHaveLength(0);
    const description = await s.handle.describe();
    expect(description.typedSearchAttributes.get(BatchStatusKey)).toBe('completed');
    expect(description.typedSearchAttributes.get(ModelKey)).toBe('gpt-4o-mini');
  });

  it('ends failed without finalizing when validation fails (the batch row already says why)', async () => {
    const s = await scenarios.start('validation fails', { validation: { ok: false, errorCount: 3 } });
    expect(await s.result()).toBe('failed');
    expect(s.calls('dispatchChunk')).toHaveLength(0);
    expect(s.calls('finalizeBatch')).toHaveLength(0);
    expect(s.calls('markCancelling')).toHaveLength(0);
    expect((await s.handle.describe()).typedSearchAttributes.get(BatchStatusKey)).toBe('failed');
  });

  describe('completion window', () => {
    it.each([24, 48])(
      'expires %i hours after the start: chunks in flight are cancelled, then the batch finalizes as expired',
      async (hours) => {
        // Chunks that never finish: scheduled on a queue nobody polls, so only the window ends them.
        const s = await scenarios.start(
          `expires ${hours}h`,
          { chunkCount: 3 },
          { windowMs: hours * HOUR, window: 2, parkChunks: true },
        );
        const startedAt = s.input.expiresAt - hours * HOUR;
        await s.waitForHistory(
          'two chunks in flight',
          (events) => dispatchScheduled(events) === 2 && isIdle(events),
        );

        await s.skipTo(s.input.expiresAt - 1_000, 2);
        expect(await s.env.currentTimeMs()).toBeGreaterThanOrEqual(s.input.expiresAt - 1_000);
        expect(s.calls('finalizeBatch')).toHaveLength(0);
        expect((await s.handle.describe()).status.name).toBe('RUNNING');

        expect(await s.result()).toBe('expired');
        const finalize = only(s.calls('finalizeBatch'));
        expect(finalize.finalize?.reason).toBe('expired');
        expect(finalize.startedAt).toBeGreaterThanOrEqual(s.input.expiresAt);
        expect(finalize.startedAt - startedAt).toBeLessThan(hours * HOUR + 60_000);

        const events = (await s.runs())[0].history.events!;
        const fired = only(positionsOf(events, 'TimerFired'));
        const cancelled = positionsOf(events, 'ActivityTaskCanceled');
        const finalizeScheduled = only(
          scheduledActivities(events).filter((a) => a.name === 'finalizeBatch'),
        ).at;
        expect(cancelled).toHaveLength(2);
        expect(cancelled.every((i) => i > fired && i < finalizeScheduled)).toBe(true);
        expect(scheduledChunks(events)).toEqual([0, 1]);
      },
    );
  });

  describe('cancel', () => {
    it.each(CANCEL_KINDS)(
      'during validation (%s): finalizes as cancelled, no chunk dispatched',
      async (kind) => {
        const s = await scenarios.start(`cancel validating ${kind}`, {
          chunkCount: 3,
          onValidate: (run) => run.untilCancelled(),
        });
        await waitFor('validation running', async () => s.calls('validateInput').length === 1);

        const answer = await cancel(s, kind);
        if (kind === 'update') expect(answer).toEqual({ status: 'cancelling' });

        expect(await s.result()).toBe('cancelled');
        expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
        expect(s.calls('dispatchChunk')).toHaveLength(0);
        const marked = s.calls('markCancelling');
        expect(marked.length).toBeGreaterThanOrEqual(1);
        expect(marked[0].startSeq).toBeLessThan(only(s.calls('finalizeBatch')).startSeq);
        await waitFor(
          'validation cancelled',
          async () => s.calls('validateInput')[0].end?.kind === 'cancelled',
        );
      },
    );

    it.each(CANCEL_KINDS)(
      'during dispatch (%s): chunks in flight are cancelled and acknowledge before finalize; nothing new starts',
      async (kind) => {
        const s = await scenarios.start(
          `cancel dispatching ${kind}`,
          {
            chunkCount: 6,
            // Chunk 0 finishes; the others run until cancelled, then take a moment to record what they finished.
            onChunk: async (run) =>
              run.chunkIndex === 0 ? undefined : run.untilCancelled({ acknowledgeAfterMs: 200 }),
          },
          { window: 3 },
        );
        await waitFor('three chunks in flight', async () => running(s.calls('dispatchChunk')).length === 3);

        const answer = await cancel(s, kind);
        if (kind === 'update') expect(answer).toEqual({ status: 'cancelling' });

        expect(await s.result()).toBe('cancelled');
        const finalize = only(s.calls('finalizeBatch'));
        expect(finalize.finalize?.reason).toBe('cancelled');
        const chunks = s.calls('dispatchChunk');
        expect(indices(chunks)).toEqual([0, 1, 2, 3]);
        const stopped = chunks.filter((c) => c.chunkIndex !== 0);
        expect(stopped).toHaveLength(3);
        for (const chunk of stopped) {
          expect(chunk.end).toMatchObject({ kind: 'cancelled', reason: 'cancelRequested' });
          expect(chunk.end!.seq).toBeLessThan(finalize.startSeq);
        }
        const events = (await s.runs())[0].history.events!;
        // Temporal's own cancel ends as the API's does: completed with "cancelled", not a cancelled execution.
        expect(eventName(events.at(-1)!)).toBe('WorkflowExecutionCompleted');
        expect(positionsOf(events, 'WorkflowExecutionCancelRequested')).toHaveLength(
          kind === 'temporal' ? 1 : 0,
        );
      },
    );

    it('after validation, when validation found the batch no longer validating (an API cancel meanwhile)', async () => {
      const s = await scenarios.start('cancelled while validation finished', {
        validation: {
          ok: true,
          total: 30,
          chunkCount: 3,
          model: 'gpt-4o-mini',
          capacity: 0,
          stillValidating: false,
        },
      });
      expect(await s.result()).toBe('cancelled');
      expect(s.calls('dispatchChunk')).toHaveLength(0);
      expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
    });

    it.each<Exclude<CancelKind, 'temporal'>>(['signal', 'update'])(
      'arriving in the workflow task that brings validation’s result (%s): cancel wins, no chunk starts',
      async (kind) => {
        const validated = new Gate();
        const s = await scenarios.start(`cancel with validation result ${kind}`, {
          chunkCount: 3,
          onValidate: (run) => run.until(validated),
        });
        await waitFor('validation running', async () => s.calls('validateInput').length === 1);
        await s.pauseWorkflows();
        validated.open();
        await s.waitForHistory(
          'validation completed',
          (events) => positionsOf(events, 'ActivityTaskCompleted').length === 1,
        );
        const { answer } = await sendWhilePaused(s, kind);
        await s.resumeWorkflows();

        expect(await s.result()).toBe('cancelled');
        if (answer) expect(await answer).toEqual({ status: 'cancelling' });
        expect(s.calls('dispatchChunk')).toHaveLength(0);
        expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
        expectOneWorkflowTask((await s.runs())[0].history.events!, kind);
      },
    );

    it.each(CANCEL_KINDS)('while finalizing (%s): the batch ends as finalize decided', async (kind) => {
      const finalized = new Gate();
      const s = await scenarios.start(`cancel finalizing ${kind}`, {
        chunkCount: 2,
        onFinalize: (run) => run.until(finalized),
      });
      await waitFor('finalize running', async () => s.calls('finalizeBatch').length === 1);

      if (kind === 'update') {
        const refused = await s.handle.executeUpdate(cancelUpdate).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
        const cause = (refused as WorkflowUpdateFailedError).cause;
        expect(cause).toBeInstanceOf(ApplicationFailure);
        expect((cause as ApplicationFailure).type).toBe(NOT_CANCELLABLE);
      } else {
        await cancel(s, kind);
      }
      finalized.open();

      expect(await s.result()).toBe('completed');
      const finalize = only(s.calls('finalizeBatch'));
      expect(finalize.finalize?.reason).toBe('completed');
      expect(finalize.end?.kind).toBe('returned');
      expect(s.calls('markCancelling')).toHaveLength(0);
      const events = (await s.runs())[0].history.events!;
      // A validator's rejection leaves no trace in history.
      expect(events.filter((e) => eventName(e).startsWith('WorkflowExecutionUpdate'))).toHaveLength(0);
    });

    it.each<Exclude<CancelKind, 'temporal'>>(['signal', 'update'])(
      'arriving in the workflow task that sees the last chunk complete (%s): cancel wins',
      async (kind) => {
        const lastChunk = new Gate();
        const s = await scenarios.start(
          `cancel racing last chunk ${kind}`,
          {
            chunkCount: 2,
            onChunk: async (run) => (run.chunkIndex === 1 ? run.until(lastChunk) : undefined),
          },
          { window: 2 },
        );
        await s.waitForHistory(
          'chunk 0 done, chunk 1 running',
          (events) => positionsOf(events, 'ActivityTaskCompleted').length === 2 && isIdle(events),
        );
        await s.pauseWorkflows();
        lastChunk.open();
        await s.waitForHistory(
          'last chunk completed',
          (events) => positionsOf(events, 'ActivityTaskCompleted').length === 3,
        );
        const { answer } = await sendWhilePaused(s, kind);
        await s.resumeWorkflows();

        expect(await s.result()).toBe('cancelled');
        if (answer) expect(await answer).toEqual({ status: 'cancelling' });
        expect(indices(s.calls('dispatchChunk'))).toEqual([0, 1]);
        expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
        expectOneWorkflowTask((await s.runs())[0].history.events!, kind);
      },
    );
  });

  describe('continue-as-new', () => {
    it('hands the chunks in flight to the next run, which dispatches them first; no chunk skipped or sent twice', async () => {
      let firstRun = '';
      const fourth = new Gate();
      const s = await scenarios.start(
        'continues as new',
        {
          chunkCount: 12,
          onChunk: async (run) => {
            firstRun ||= run.call.runId; // chunks start in the first run
            if (run.call.runId !== firstRun) return undefined;
            // First run: chunks 0-3 grow the history past the suggestion; the next ones stay in flight.
            if (run.chunkIndex < 3) return paddedReport();
            if (run.chunkIndex === 3) return run.until(fourth).then(paddedReport);
            return run.park();
          },
        },
        { window: 4 },
      );
      // Chunk 3 ends alone, the workflow idle and nothing heartbeating: the test server fails a
      // continue-as-new that any other event or heartbeat races (see Running.park).
      await s.waitForHistory(
        'chunks 0-2 done, 3-6 in flight',
        (events) => completedChunks(events).length === 3 && dispatchScheduled(events) === 7 && isIdle(events),
      );
      fourth.open();
      expect(await s.result()).toBe('completed');
      expect(firstRun).toBe(s.handle.firstExecutionRunId);

      const runs = await s.runs();
      expect(runs).toHaveLength(2);
      const [first, second] = runs.map((r) => r.history.events!);
      const carried = continuedWith(first)!.carried!;
      expect(carried).toMatchObject({ chunkCount: 12, window: 4, cancelRequested: false });
      expect(carried.pending.length).toBeGreaterThan(0);
      // In flight when the run closed: scheduled in the first run, not completed there.
      const inFlight = scheduledChunks(first).filter((i) => !completedChunks(first).includes(i));
      expect([...carried.pending].sort()).toEqual(inFlight.sort());
      expect(carried.nextChunk).toBe(Math.max(...scheduledChunks(first)) + 1);

      // The next run's first workflow task schedules the handed-over chunks first, then goes on from nextChunk.
      const firstTask = positionsOf(second, 'WorkflowTaskCompleted')[0];
      const secondTask = positionsOf(second, 'WorkflowTaskCompleted')[1] ?? second.length;
      const scheduledFirst = scheduledActivities(second)
        .filter((a) => a.name === 'dispatchChunk' && a.at > firstTask && a.at < secondTask)
        .map((a) => a.input.chunkIndex as number);
      expect(scheduledFirst.slice(0, carried.pending.length)).toEqual(carried.pending);
      expect(scheduledFirst.slice(carried.pending.length)).toEqual(
        Array.from({ length: 4 - carried.pending.length }, (_, i) => carried.nextChunk + i),
      );

      for (const events of [first, second]) {
        const scheduled = scheduledChunks(events);
        expect(new Set(scheduled).size).toBe(scheduled.length);
      }
      const done = [...completedChunks(first), ...completedChunks(second)].sort((a, b) => a - b);
      expect(done).toEqual(Array.from({ length: 12 }, (_, i) => i));
      const parked = s.calls('dispatchChunk').filter((c) => c.runId === firstRun && !c.end);
      expect(indices(parked)).toEqual([...carried.pending].sort());
      expect(only(s.calls('finalizeBatch')).runId).toBe(runs[1].runId);
    });

    // Found by this test: dispatchAll returned 'continue' and the stop path finalized without
    // waiting for the chunks it cancelled. Now every finalize first stops and awaits them.
    it.each<Exclude<CancelKind, 'temporal'>>(['signal', 'update'])(
      'a cancel (%s) in the workflow task where continue-as-new is suggested: cancelled, chunks acknowledge before finalize',
      async (kind) => {
        const fourth = new Gate();
        // Chunks 4-6 stay silent until the workflow worker is stopped: the test server turns a
        // heartbeat landing during a workflow task into one more task, and a task handed to a
        // worker as it stops times out and loses the events buffered meanwhile (chunk 3's end).
        const heartbeats = new Gate();
        const s = await scenarios.start(
          `cancel at continue-as-new ${kind}`,
          {
            chunkCount: 12,
            onChunk: async (run) => {
              if (run.chunkIndex < 3) return paddedReport();
              if (run.chunkIndex === 3) return run.until(fourth).then(paddedReport);
              await run.until(heartbeats);
              // Recording what they finished takes a while: finalize must wait for it.
              return run.untilCancelled({ acknowledgeAfterMs: 1_000 });
            },
          },
          { window: 4 },
        );
        await waitFor(
          'chunks 0-2 done, 3-6 running',
          async () => running(s.calls('dispatchChunk')).length === 4 && s.calls('dispatchChunk').length === 7,
        );
        await s.waitForHistory(
          'chunks 4-6 scheduled, the workflow idle',
          (events) => scheduledChunks(events).length === 7 && isIdle(events),
        );
        await s.pauseWorkflows();
        heartbeats.open();
        fourth.open();
        await s.waitForHistory('chunk 3 completed', (events) => completedChunks(events).length === 4);
        const { answer } = await sendWhilePaused(s, kind);
        await s.resumeWorkflows();

        expect(await s.result()).toBe('cancelled');
        if (answer) expect(await answer).toEqual({ status: 'cancelling' });
        const runs = await s.runs();
        const events = runs[0].history.events!;
        expectOneWorkflowTask(events, kind);
        const suggested = events.filter((e) => e.workflowTaskStartedEventAttributes?.suggestContinueAsNew);
        expect(suggested.length).toBeGreaterThan(0);
        // Checked before continuing: no run starts for a cancelled batch.
        expect(runs).toHaveLength(1);
        expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
        expect(indices(s.calls('dispatchChunk'))).toEqual([0, 1, 2, 3, 4, 5, 6]);
        // Chunks 4-6 acknowledge their cancellation (their last results recorded) before finalize is scheduled.
        const cancelled = positionsOf(events, 'ActivityTaskCanceled');
        expect(cancelled).toHaveLength(3);
        const finalizeScheduled = only(
          scheduledActivities(events).filter((a) => a.name === 'finalizeBatch'),
        ).at;
        expect(Math.max(...cancelled)).toBeLessThan(finalizeScheduled);
      },
    );

    it('a run handed a cancel finalizes as cancelled without dispatching', async () => {
      const s = await scenarios.start(
        'carried cancel',
        { chunkCount: 5 },
        {
          input: {
            carried: { chunkCount: 5, nextChunk: 3, pending: [1, 2], window: 4, cancelRequested: true },
          },
        },
      );
      expect(await s.result()).toBe('cancelled');
      expect(s.calls('validateInput')).toHaveLength(0);
      expect(s.calls('dispatchChunk')).toHaveLength(0);
      expect(only(s.calls('finalizeBatch')).finalize?.reason).toBe('cancelled');
    });

    it('a first-release run that continued as new (position only) goes on with the current code', async () => {
      const s = await scenarios.start(
        'continues a first-release run',
        { chunkCount: 5 },
        { input: { progress: { chunkCount: 5, nextChunk: 3 } } },
      );
      expect(await s.result()).toBe('completed');
      expect(s.calls('validateInput')).toHaveLength(0);
      expect(indices(s.calls('dispatchChunk'))).toEqual([3, 4]);
      const events = (await s.runs())[0].history.events!;
      const marker = only(positionsOf(events, 'MarkerRecorded'));
      expect(events[marker].markerRecordedEventAttributes?.markerName).toBe('core_patch');
    });
  });

  describe('chunk failures', () => {
    it('a chunk failing for good (PoisonInput) stops the others and fails the batch with its message', async () => {
      const failNow = new Gate();
      const s = await scenarios.start(
        'poison chunk',
        {
          chunkCount: 4,
          onChunk: async (run) => {
            if (run.chunkIndex === 0) return run.untilCancelled({ acknowledgeAfterMs: 200 });
            await run.until(failNow);
            throw new PoisonInput('line 17 of chunk 1 no longer parses');
          },
        },
        { window: 2 },
      );
      await waitFor('both chunks running', async () => running(s.calls('dispatchChunk')).length === 2);
      failNow.open();

      expect(await s.result()).toBe('failed');
      const finalize = only(s.calls('finalizeBatch'));
      expect(finalize.finalize).toEqual({
        batchId: s.batchId,
        reason: 'failed',
        failure: {
          code: 'batch_failed',
          message: 'The batch could not be completed: line 17 of chunk 1 no longer parses',
        },
      });
      const chunks = s.calls('dispatchChunk');
      expect(indices(chunks)).toEqual([0, 1]);
      const [stopped, poisoned] = [
        chunks.find((c) => c.chunkIndex === 0)!,
        chunks.find((c) => c.chunkIndex === 1)!,
      ];
      expect(poisoned).toMatchObject({ attempt: 1, end: { kind: 'failed' } });
      expect(stopped.end).toMatchObject({ kind: 'cancelled', reason: 'cancelRequested' });
      expect(stopped.end!.seq).toBeLessThan(finalize.startSeq);
    });

    it('PoisonInput is final by its type even when thrown as retryable', async () => {
      const s = await scenarios.start('poison by type', {
        chunkCount: 1,
        onChunk: async () => {
          throw ApplicationFailure.retryable('bad bytes', 'PoisonInput');
        },
      });
      expect(await s.result()).toBe('failed');
      expect(s.calls('dispatchChunk').map((c) => c.attempt)).toEqual([1]);
    });

    it('an infrastructure fault is retried with backoff, and the batch completes', async () => {
      const s = await scenarios.start('retried chunk', {
        chunkCount: 1,
        onChunk: async (run) => {
          if (run.attempt < 3) throw new InfrastructureFault('postgres: connection reset');
        },
      });
      expect(await s.result()).toBe('completed');
      const attempts = s.calls('dispatchChunk');
      expect(attempts.map((c) => c.attempt)).toEqual([1, 2, 3]);
      // Backoff 1 s, then 2 s, on the server's clock.
      expect(attempts[1].startedAt - attempts[0].startedAt).toBeGreaterThanOrEqual(1_000);
      expect(attempts[2].startedAt - attempts[1].startedAt).toBeGreaterThanOrEqual(2_000);
    });

    it('an infrastructure fault that never heals fails the batch after the chunk retry bound (30 attempts)', async () => {
      const s = await scenarios.start('chunk retries exhausted', {
        chunkCount: 1,
        onChunk: async () => {
          throw new InfrastructureFault('minio: service unavailable');
        },
      });
      expect(await s.result()).toBe('failed');
      const attempts = s.calls('dispatchChunk');
      expect(attempts.map((c) => c.attempt)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      // 1+2+4+8+16+32 s, then 23 times the 1-minute maximum: about 24 minutes, skipped.
      expect(attempts[29].startedAt - attempts[0].startedAt).toBeGreaterThanOrEqual(1_443_000);
      expect(only(s.calls('finalizeBatch')).finalize).toMatchObject({
        reason: 'failed',
        failure: {
          code: 'batch_failed',
          message: 'The batch could not be completed: minio: service unavailable',
        },
      });
    });
  });

  it('replays every history these scenarios produced (each workflow task already replayed the whole history)', async () => {
    expect(scenarios.runs.length).toBeGreaterThanOrEqual(20);
    const replayed = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: await currentWorkflowBundle() },
      scenarios.runs.map(({ workflowId, run }) => ({ workflowId, history: run.history })),
    )) {
      replayed.push(result);
    }
    expect(replayed).toHaveLength(scenarios.runs.length);
    expect(replayed.filter((r) => r.error).map((r) => `${r.workflowId}: ${String(r.error)}`)).toEqual([]);
  });
});

/**
 * Sends a cancel while no workflow worker runs, so it reaches the workflow in the same
 * workflow task as what happened just before. An Update is only admitted then; its answer
 * comes once a worker runs it.
 */
async function sendWhilePaused(
  s: Scenario,
  kind: 'signal' | 'update',
): Promise<{ answer?: Promise<{ status: string }> }> {
  if (kind === 'signal') {
    await s.handle.signal(cancelBatchSignal);
    await s.waitForHistory(
      'signal recorded',
      (events) => positionsOf(events, 'WorkflowExecutionSignaled').length === 1,
    );
    return {};
  }
  const updateId = `cancel-${s.batchId}`;
  const answer = s.handle.executeUpdate(cancelUpdate, { updateId });
  answer.catch(() => undefined); // awaited by the test once the worker is back
  const { workflowService } = s.env.connection;
  // NOT_FOUND until the server has it.
  await waitFor('update admitted', async () => {
    const polled = await workflowService.pollWorkflowExecutionUpdate({
      namespace: s.env.namespace ?? 'default',
      updateRef: { workflowExecution: { workflowId: s.batchId }, updateId },
      waitPolicy: {
        lifecycleStage:
          temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage
            .UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED,
      },
    });
    return polled.stage !== undefined;
  });
  return { answer };
}

/** The cancel and the last ActivityTaskCompleted before it reached the workflow in one workflow task. */
function expectOneWorkflowTask(
  events: temporal.api.history.v1.IHistoryEvent[],
  kind: 'signal' | 'update',
): void {
  const cancelAt = only(
    positionsOf(events, kind === 'signal' ? 'WorkflowExecutionSignaled' : 'WorkflowExecutionUpdateAccepted'),
  );
  const completedBefore = positionsOf(events, 'ActivityTaskCompleted').filter((i) => i < cancelAt);
  expect(completedBefore.length).toBeGreaterThan(0);
  // A signal is in history before the task that handles it; an Update is accepted by that task's completion.
  expect(tasksCompletedBetween(events, completedBefore.at(-1)!, cancelAt)).toBe(kind === 'signal' ? 0 : 1);
}
