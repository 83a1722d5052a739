import type { FinalizeRequest } from '../../src/batches/finalize/finalizer';
import { Reconciler } from '../../src/batches/reconcile/reconciler';
import type { BatchRecord, BatchStatus } from '../../src/database/entities/batch.entity';

const batch = (id: string, status: BatchStatus) => ({ id, status }) as BatchRecord;

function reconciler(batches: BatchRecord[], workflows: Record<string, string | null>) {
  const started: string[] = [];
  const finalized: FinalizeRequest[] = [];
  let asked: Date | undefined;
  const r = new Reconciler(
    {
      candidates: async (before) => {
        asked = before;
        return batches;
      },
      workflowStatus: async (id) => workflows[id] ?? null,
      startWorkflow: async (b) => void started.push(b.id),
      finalize: async (request) => {
        finalized.push(request);
        return { status: request.reason };
      },
      now: () => new Date(1_000_000),
    },
    60_000,
  );
  return { r, started, finalized, asked: () => asked };
}

describe('Reconciler', () => {
  it('leaves batches with a running workflow alone, and young ones out of its list', async () => {
    const { r, started, finalized, asked } = reconciler([batch('a', 'in_progress')], { a: 'RUNNING' });
    expect(await r.reconcileOnce()).toEqual({ checked: 1, started: [], finalized: [] });
    expect([started, finalized]).toEqual([[], []]);
    expect(asked()).toEqual(new Date(1_000_000 - 60_000));
  });

  it('starts the workflow a validating batch never got', async () => {
    const { r, started } = reconciler([batch('a', 'validating')], { a: null });
    expect((await r.reconcileOnce()).started).toEqual(['a']);
    expect(started).toEqual(['a']);
  });

  it('finishes a batch whose workflow is gone: cancelled if it was cancelling, else failed with why', async () => {
    const { r, finalized } = reconciler(
      [batch('a', 'in_progress'), batch('b', 'cancelling'), batch('c', 'finalizing')],
      { a: 'TERMINATED', b: 'TERMINATED', c: null },
    );
    const report = await r.reconcileOnce();
    expect(report.finalized.map((f) => [f.id, f.status, f.workflow])).toEqual([
      ['a', 'failed', 'TERMINATED'],
      ['b', 'cancelled', 'TERMINATED'],
      ['c', 'failed', 'MISSING'],
    ]);
    expect(finalized[0]).toMatchObject({
      reason: 'failed',
      failure: { code: 'batch_failed', message: expect.stringContaining('ended terminated') },
    });
    expect(finalized[2].failure?.message).toContain('is missing');
  });
});
