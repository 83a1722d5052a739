import { sustained } from '../../bench/figures';
import { buildWorkload, checkFiles } from '../../bench/workload';
import type { SecondStats } from '../../src/simulator/server';

// The bench's own arithmetic: a check that could not fail would report a broken Barge as fine.

const second = (t: number, inFlight: number): SecondStats => ({
  t,
  inFlight,
  serving: 0,
  arrivals: 0,
  rateLimited: 0,
});

describe('bench figures', () => {
  it('averages the middle 80% of the run, counting missing seconds as idle', () => {
    // Ten seconds: ramp-up (t=100) and tail (t=109) are left out; t=104..105 had nothing in flight.
    const history = [second(100, 5), second(101, 90), second(102, 110), second(103, 100), second(106, 100)];
    history.push(second(107, 100), second(108, 100), second(109, 3));
    expect(sustained(history, 'inFlight')).toBe((90 + 110 + 100 + 0 + 0 + 100 + 100 + 100) / 8);
    expect(sustained([second(7, 42)], 'inFlight')).toBe(42);
    expect(sustained([], 'inFlight')).toBeNull();
  });
});

describe('bench output check', () => {
  const workload = buildWorkload(
    't',
    4,
    { kind: 'fixed', ms: 0 },
    {
      rateLimitedOnce: { share: 0, retryAfterMs: 0 },
      serverErrorTwice: 0,
      permanentBadRequest: 0.5,
      resetOnce: 0,
    },
  );
  const ok = (id: string): string =>
    JSON.stringify({ custom_id: id, response: { status_code: 200 }, error: null });
  const bad = (id: string): string =>
    JSON.stringify({ custom_id: id, response: { status_code: 400 }, error: null });
  const output = workload.customIds.filter((_, i) => workload.expected[i] === 'output');
  const errors = workload.customIds.filter((_, i) => workload.expected[i] === 'error');

  it('draws the fault mix into the lines and expects each line in its file', () => {
    expect(output.length + errors.length).toBe(4);
    expect(errors.length).toBe(workload.faultCounts.permanent_bad_request ?? 0);
    expect(errors.length).toBeGreaterThan(0);
    expect(output.length).toBeGreaterThan(0);
    const lines = workload.jsonl
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const failing = lines
      .filter((line) => line.body.simulate?.fail_status === 400)
      .map((line) => line.custom_id);
    expect(failing).toEqual(errors);
  });

  it('accepts every custom_id once in its file', () => {
    const check = checkFiles(workload, output.map(ok).join('\n') + '\n', errors.map(bad).join('\n') + '\n');
    expect(check).toMatchObject({ ok: true, outputLines: output.length, errorLines: errors.length });
  });

  it('reports missing, duplicated, misplaced and unknown lines', () => {
    const [first, ...rest] = output;
    const check = checkFiles(
      workload,
      [...rest, rest[0] ?? first, 'x-unknown'].map(ok).join('\n'),
      [...errors, first].map(bad).join('\n'),
    );
    expect(check.ok).toBe(false);
    expect(check.duplicated).toBe(rest.length > 0 ? 1 : 0);
    expect(check.misplaced).toBe(1); // `first` in the error file
    expect(check.unexpected).toBe(1);
    expect(checkFiles(workload, output.map(ok).join('\n'), '')).toMatchObject({
      ok: false,
      missing: errors.length,
    });
    // A 2xx in the output file is required: a 500 recorded there is misplaced too.
    const served500 = output.map((id) => JSON.stringify({ custom_id: id, response: { status_code: 500 } }));
    expect(checkFiles(workload, served500.join('\n'), errors.map(bad).join('\n')).misplaced).toBe(
      output.length,
    );
  });

  it('tolerates batch_cancelled lines only when the bench cancelled the batch', () => {
    const cancelled = output.map((id) =>
      JSON.stringify({ custom_id: id, response: null, error: { code: 'batch_cancelled', message: '' } }),
    );
    const errorFile = [...errors.map(bad), ...cancelled].join('\n');
    expect(checkFiles(workload, '', errorFile, true)).toMatchObject({ ok: true, cancelled: output.length });
    expect(checkFiles(workload, '', errorFile, false)).toMatchObject({ ok: false, misplaced: output.length });
  });
});
