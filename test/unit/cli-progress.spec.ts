import type { Batch } from '../../src/cli/api-client';
import { ApiError } from '../../src/cli/api-client';
import { reportEnd, watchBatch } from '../../src/cli/batches/watch';
import type { CliIO } from '../../src/cli/io';
import { bar, etaSeconds, formatDuration, plainLine, RateTracker, statusLine } from '../../src/cli/progress';

const batch = (status: string, completed: number, failed: number, total = 100): Batch => ({
  id: 'batch_abc',
  status,
  endpoint: '/v1/chat/completions',
  input_file_id: 'file-in',
  completion_window: '24h',
  created_at: 1_700_000_000,
  request_counts: { total, completed, failed },
});

describe('CLI progress', () => {
  it('measures the rate over its window, and only once it can', () => {
    const rates = new RateTracker(10_000);
    rates.add(0, 0);
    expect(rates.rate()).toBeNull();
    rates.add(500, 5);
    expect(rates.rate()).toBeNull(); // under a second apart
    rates.add(2_000, 20);
    expect(rates.rate()).toBe(10);
    rates.add(20_000, 200); // the first samples fall out of the window
    expect(rates.rate()).toBeCloseTo(180 / 18, 5);
    rates.add(21_000, 3); // counts went back: another batch
    expect(rates.rate()).toBeNull();
  });

  it('estimates the time left only while in progress', () => {
    expect(etaSeconds(batch('in_progress', 40, 10), 5)).toBe(10);
    expect(etaSeconds(batch('in_progress', 40, 10), null)).toBeNull();
    expect(etaSeconds(batch('finalizing', 100, 0), 5)).toBeNull();
    expect(etaSeconds(batch('validating', 0, 0, 0), 5)).toBeNull();
  });

  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [61, '1m01s'],
    [3_600, '1h00m'],
    [3_725, '1h02m'],
    [90_000, '1d01h'],
  ])('formats %p seconds as %p', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('draws one line that fits the terminal', () => {
    const running = batch('in_progress', 40, 5);
    const line = statusLine(running, 12.5, 40, 100);
    expect(line.length).toBeLessThan(100);
    expect(line).toMatch(
      /^batch_abc {2}in_progress {2}\[█+░+\] {2}45% {2}45\/100 done {2}5 failed {2}13\/s {2}ETA 40s$/,
    );
    expect(line).toContain(bar(0.45, line.indexOf(']') - line.indexOf('[') - 1));
    // Too narrow for a bar: the facts stay, the bar goes.
    const narrow = statusLine(running, 12.5, 40, 60);
    expect(narrow).not.toContain('[');
    expect(narrow.length).toBeLessThan(60);
    expect(statusLine(batch('validating', 0, 0, 0), null, null, 80)).toBe('batch_abc  validating');
  });

  it('writes log lines with a timestamp and no bar', () => {
    expect(plainLine(batch('in_progress', 40, 5), 2, 27.5, Date.UTC(2026, 0, 2, 3, 4, 5))).toBe(
      '2026-01-02T03:04:05Z batch_abc in_progress 45/100 done, 5 failed, 2.0/s, ETA 28s',
    );
  });
});

/** A CliIO that records what goes where. */
function recorder(tty?: { columns: number }) {
  const out: string[] = [];
  const err: string[] = [];
  const raw: string[] = [];
  const io: CliIO = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    write: (t) => raw.push(t),
    tty,
  };
  return { io, out, err, raw };
}

/** A server that answers each poll from `answers` in turn, on a clock that moves only when slept. */
function scripted(answers: (Batch | ApiError)[]) {
  let t = 0;
  let polls = 0;
  const client = {
    json: async <T>(): Promise<T> => {
      const answer = answers[Math.min(polls++, answers.length - 1)];
      if (answer instanceof ApiError) throw answer;
      return answer as T;
    },
  };
  const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
  return { client, clock, polls: () => polls };
}

describe('CLI watch', () => {
  const answers = [
    batch('validating', 0, 0, 0),
    batch('in_progress', 10, 0),
    batch('in_progress', 10, 0),
    batch('in_progress', 50, 2),
    batch('finalizing', 98, 2),
    batch('completed', 98, 2),
  ];

  it('prints a timestamped line per change when stdout is not a terminal', async () => {
    const { client, clock, polls } = scripted(answers);
    const { io, out, raw } = recorder();
    const ended = await watchBatch(client, 'batch_abc', io, { intervalMs: 1_000, clock });
    expect(ended.status).toBe('completed');
    expect(polls()).toBe(6);
    expect(raw).toEqual([]);
    expect(out).toEqual([
      '1970-01-01T00:00:00Z batch_abc validating',
      '1970-01-01T00:00:01Z batch_abc in_progress 10/100 done, 10/s, ETA 9s',
      // the unchanged poll at 2 s printed nothing
      '1970-01-01T00:00:03Z batch_abc in_progress 52/100 done, 2 failed, 17/s, ETA 3s',
      '1970-01-01T00:00:04Z batch_abc finalizing 100/100 done, 2 failed, 25/s',
      '1970-01-01T00:00:05Z batch_abc completed 100/100 done, 2 failed',
    ]);
  });

  it('redraws one line in place on a terminal, and ends it', async () => {
    const { client, clock } = scripted(answers);
    const { io, out, raw } = recorder({ columns: 100 });
    await watchBatch(client, 'batch_abc', io, { intervalMs: 1_000, clock });
    expect(out).toEqual([]);
    expect(raw).toHaveLength(7);
    expect(raw.slice(0, 6).every((t) => t.startsWith('\r\x1b[2Kbatch_abc  '))).toBe(true);
    expect(raw[3]).toContain('52%');
    expect(raw[6]).toBe('\n');
  });

  it('keeps polling through server errors, and stops at a client error', async () => {
    const flaky = scripted([
      new ApiError(503, 'Service unavailable'),
      new ApiError(0, 'cannot reach http://127.0.0.1:1/v1: ECONNREFUSED'),
      batch('completed', 100, 0),
    ]);
    const plain = recorder();
    await expect(
      watchBatch(flaky.client, 'batch_abc', plain.io, { intervalMs: 10, clock: flaky.clock }),
    ).resolves.toMatchObject({
      status: 'completed',
    });
    expect(plain.err).toEqual([
      'barge: batch_abc: Service unavailable; retrying',
      'barge: batch_abc: cannot reach http://127.0.0.1:1/v1: ECONNREFUSED; retrying',
    ]);
    const gone = scripted([new ApiError(404, 'No such Batch object: batch_abc')]);
    await expect(
      watchBatch(gone.client, 'batch_abc', recorder().io, { intervalMs: 10, clock: gone.clock }),
    ).rejects.toThrow('No such Batch object');
    expect(gone.polls()).toBe(1);
  });

  it('reports where the files are, and exits 0 only for completed', () => {
    const url = { url: (path: string) => `http://barge/v1${path}` };
    const done = recorder();
    const completed = { ...batch('completed', 98, 2), output_file_id: 'file-out', error_file_id: 'file-err' };
    expect(reportEnd(completed, url, done.io)).toBe(0);
    expect(done.out).toEqual([
      'batch_abc completed: 98 of 100 requests completed, 2 failed',
      '  output: file-out  http://barge/v1/files/file-out/content',
      '  errors: file-err  http://barge/v1/files/file-err/content',
      '  download: barge batches download batch_abc',
    ]);
    const failed = recorder();
    const invalid = {
      ...batch('failed', 0, 0, 0),
      errors: { data: [{ line: 3, code: 'invalid_json_line', message: 'Line 3 is not valid JSON.' }] },
    };
    expect(reportEnd(invalid, url, failed.io)).toBe(1);
    expect(failed.out).toEqual([
      'batch_abc failed',
      '  line 3: invalid_json_line: Line 3 is not valid JSON.',
    ]);
  });
});
