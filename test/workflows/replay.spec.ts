import { Worker, type ReplayResult } from '@temporalio/worker';
import { join } from 'node:path';
import { ROOT } from '../support/stack';
import { currentWorkflowBundle, installTestRuntime } from '../support/time-skipping';
import { loadHistories } from './histories';

/**
 * Determinism across deploys: histories recorded from earlier code replay against the current
 * workflow code (bundled from workflows/), without a server. See test/fixtures/histories/README.md.
 */

const FIXTURES = join(ROOT, 'test', 'fixtures', 'histories');

async function replay(histories: ReturnType<typeof loadHistories>): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: await currentWorkflowBundle() },
    histories,
  )) {
    results.push(result);
  }
  return results;
}

describe('replay of recorded batch workflow histories', () => {
  beforeAll(async () => {
    installTestRuntime();
    await currentWorkflowBundle();
  }, 60_000);

  it.each([
    // The first release, every scenario it had (its code now runs behind patched('barge-batch-v2')).
    ['first-release', 8],
    // This release's own runs, recorded from test/workflows/batch.workflow.spec.ts.
    ['barge-batch-v2', 26],
  ])('replays every %s history without a nondeterminism error', async (release, atLeast) => {
    const histories = loadHistories(join(FIXTURES, release));
    expect(histories.length).toBeGreaterThanOrEqual(atLeast);
    const results = await replay(histories);
    expect(results).toHaveLength(histories.length);
    expect(results.filter((r) => r.error).map((r) => `${r.workflowId}: ${String(r.error)}`)).toEqual([]);
  });

  it('fails a history the code does not match (the check can fail)', async () => {
    const [completed] = loadHistories(join(FIXTURES, 'first-release')).filter(
      (h) => h.file === 'completed-0.json',
    );
    const scheduled = completed.history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
    expect(scheduled.activityTaskScheduledEventAttributes!.activityType!.name).toBe('validateInput');
    scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'someOtherActivity';

    const [result] = await replay([completed]);
    expect(result.error?.name).toBe('DeterminismViolationError');
  });
});
