import OpenAI from 'openai';
import { createTenantKey, openaiFor } from '../support/api';
import { chatLine, results, submitBatch, waitForStatus } from '../support/batches';
import { waitFor } from '../support/stack';

/**
 * One tenant's many batches cannot starve another tenant: chunks that wait for upstream
 * capacity hold no slot another tenant needs (a worker runs many chunk activities; the
 * upstream's slots go round-robin across tenants, then batches).
 */
describe('fairness between tenants', () => {
  let busy: OpenAI;
  let small: OpenAI;

  beforeAll(async () => {
    busy = openaiFor(await createTenantKey(`fair-busy-${Date.now()}`));
    small = openaiFor(await createTenantKey(`fair-small-${Date.now()}`));
  });

  it("finishes a small tenant's batch within a minute while another runs 20 batches", async () => {
    const heavy = await Promise.all(
      Array.from({ length: 20 }, (_, b) =>
        submitBatch(
          busy,
          Array.from({ length: 300 }, (_, i) => chatLine(`h${b}-${i}`, { simulate: { latency_ms: 3_000 } })),
        ),
      ),
    );
    try {
      await waitFor(
        'the twenty batches running',
        async () => {
          const states = await Promise.all(heavy.map((b) => busy.batches.retrieve(b.id)));
          return states.every((s) => s.status === 'in_progress' && s.request_counts!.completed > 0);
        },
        60_000,
      );

      const submittedAt = Date.now();
      const created = await submitBatch(
        small,
        Array.from({ length: 100 }, (_, i) => chatLine(`s-${i}`, { simulate: { latency_ms: 3_000 } })),
      );
      const done = await waitForStatus(small, created.id, ['completed', 'failed'], 60_000);
      expect(done.status).toBe('completed');
      expect(Date.now() - submittedAt).toBeLessThan(60_000);
      const { ids, duplicates } = await results(small, done);
      expect(duplicates).toEqual([]);
      expect(ids.size).toBe(100);
      // The heavy tenant still had work left: the small one did not merely wait its turn.
      const left = await Promise.all(heavy.map((b) => busy.batches.retrieve(b.id)));
      expect(left.some((b) => b.status === 'in_progress')).toBe(true);
    } finally {
      await Promise.all(heavy.map((b) => busy.batches.cancel(b.id).catch(() => undefined)));
      await Promise.all(heavy.map((b) => waitForStatus(busy, b.id, ['cancelled', 'completed'], 60_000)));
    }
  }, 240_000);
});
