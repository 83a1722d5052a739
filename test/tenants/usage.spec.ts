import type { Batch } from 'openai/resources/batches';
import { withTestDb } from '../support/api';
import { chatLine, submitBatch, waitForStatus } from '../support/batches';
import { apiUrl } from '../support/stack';
import { barge, quotaTenant, QuotaTenant } from './support';

interface Figures {
  batches: number;
  requests: { total: number; completed: number; failed: number };
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
  cost: { value: number | null; currency: 'usd'; unpriced_models: string[] };
}

interface UsageAnswer {
  data: Record<string, unknown>[];
  error?: Record<string, unknown>;
  [field: string]: unknown;
}

async function getUsage(key: string, query: string): Promise<{ status: number; body: UsageAnswer }> {
  const res = await fetch(`${apiUrl()}/v1/usage${query}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as UsageAnswer };
}

/** What the batches say, summed: the figures usage must equal (and no cost: no prices). */
function sum(batches: Batch[]): Figures {
  const f: Figures = {
    batches: batches.length,
    requests: { total: 0, completed: 0, failed: 0 },
    input_tokens: 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 0,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 0,
    // The shared stack configures no prices (test/tenants/cost.spec.ts has them).
    cost: {
      value: null,
      currency: 'usd',
      unpriced_models: [...new Set(batches.map((b) => b.model!))].sort(),
    },
  };
  for (const b of batches) {
    f.requests.total += b.request_counts!.total;
    f.requests.completed += b.request_counts!.completed;
    f.requests.failed += b.request_counts!.failed;
    f.input_tokens += b.usage!.input_tokens;
    f.input_tokens_details.cached_tokens += b.usage!.input_tokens_details.cached_tokens;
    f.output_tokens += b.usage!.output_tokens;
    f.output_tokens_details.reasoning_tokens += b.usage!.output_tokens_details.reasoning_tokens;
    f.total_tokens += b.usage!.total_tokens;
  }
  return f;
}

const DAY = 86_400;

describe('usage', () => {
  let t: QuotaTenant;
  let other: QuotaTenant;
  /** Two batches of gpt-4o-mini (one created "yesterday"), one of gpt-4o. */
  let mini: Batch[];
  let big: Batch;
  let yesterday: string;
  let today: string;

  beforeAll(async () => {
    t = await quotaTenant('usage');
    other = await quotaTenant('usage-other');
    const run = async (client: QuotaTenant['client'], lines: ReturnType<typeof chatLine>[]) =>
      waitForStatus(client, (await submitBatch(client, lines)).id, ['completed', 'failed'], 90_000);
    const failing = { simulate: { fail_times: 1_000_000, fail_status: 400 } };
    const created = await Promise.all([
      run(t.client, [chatLine('m1-a'), chatLine('m1-b'), chatLine('m1-c', failing)]),
      run(t.client, [chatLine('m2-a', { max_tokens: 50 }), chatLine('m2-b')]),
      run(
        t.client,
        [1, 2, 3, 4].map((i) => chatLine(`big-${i}`, { model: 'gpt-4o' })),
      ),
      run(other.client, [chatLine('o-1'), chatLine('o-2')]),
    ]);
    mini = [created[0], created[1]];
    big = created[2];
    for (const b of created) expect(b.status).toBe('completed');
    // The second gpt-4o-mini batch counts on the day before (a batch counts when it was created).
    await withTestDb((db) =>
      db.query(`UPDATE batches SET created_at = created_at - interval '1 day' WHERE id = $1`, [mini[1].id]),
    );
    const day = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);
    today = day(mini[0].created_at);
    yesterday = day(mini[1].created_at - DAY);
  }, 180_000);

  it('sums exactly the batches, in all and per model', async () => {
    const all = await getUsage(t.key, '');
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      object: 'list',
      start_time: null,
      end_time: null,
      group_by: [],
      data: [{ object: 'usage.result', ...sum([...mini, big]) }],
    });
    expect(all.body.data[0].requests).toEqual({ total: 9, completed: 8, failed: 1 });
    expect(all.body.data[0].input_tokens).toBeGreaterThan(0);

    const byModel = await getUsage(t.key, '?group_by=model');
    expect(byModel.body.data).toEqual([
      { object: 'usage.result', model: 'gpt-4o', ...sum([big]) },
      { object: 'usage.result', model: 'gpt-4o-mini', ...sum(mini) },
    ]);
  });

  it('groups per day and filters by start_time and end_time', async () => {
    const byDay = await getUsage(t.key, '?group_by=model,day');
    expect(byDay.body.data).toEqual([
      { object: 'usage.result', model: 'gpt-4o', day: today, ...sum([big]) },
      { object: 'usage.result', model: 'gpt-4o-mini', day: yesterday, ...sum([mini[1]]) },
      { object: 'usage.result', model: 'gpt-4o-mini', day: today, ...sum([mini[0]]) },
    ]);
    const start = mini[0].created_at - 3_600;
    const recent = await getUsage(t.key, `?start_time=${start}&group_by=model`);
    expect(recent.body).toMatchObject({ start_time: start, end_time: null });
    expect(recent.body.data).toEqual([
      { object: 'usage.result', model: 'gpt-4o', ...sum([big]) },
      { object: 'usage.result', model: 'gpt-4o-mini', ...sum([mini[0]]) },
    ]);
    const before = await getUsage(t.key, `?end_time=${start}`);
    expect(before.body.data).toEqual([{ object: 'usage.result', ...sum([mini[1]]) }]);
  });

  it("answers one batch's usage by batch_id, and only the tenant's own", async () => {
    const one = await getUsage(t.key, `?batch_id=${big.id}`);
    expect(one).toEqual({
      status: 200,
      body: {
        object: 'usage.batch',
        batch_id: big.id,
        model: 'gpt-4o',
        status: 'completed',
        ...sum([big]),
        by_upstream: [
          {
            upstream: 'simulator',
            requests: { completed: 4, failed: 0 },
            input_tokens: big.usage!.input_tokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: big.usage!.output_tokens,
            output_tokens_details: { reasoning_tokens: 0 },
            price: null,
            cost: { value: null, currency: 'usd', unpriced_models: ['gpt-4o'] },
          },
        ],
      },
    });
    const foreign = await getUsage(other.key, `?batch_id=${big.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error).toMatchObject({ param: 'batch_id', type: 'invalid_request_error' });
    const otherAll = await getUsage(other.key, '');
    expect(otherAll.body.data[0]).toMatchObject({
      batches: 1,
      requests: { total: 2, completed: 2, failed: 0 },
    });
  });

  it('refuses bad parameters with the OpenAI envelope', async () => {
    const cases: [string, string][] = [
      ['?group_by=tenant', 'group_by'],
      ['?start_time=yesterday', 'start_time'],
      ['?start_time=10&end_time=5', 'end_time'],
      [`?batch_id=${big.id}&group_by=model`, 'group_by'],
    ];
    for (const [query, param] of cases) {
      const res = await getUsage(t.key, query);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param });
    }
    const res = await fetch(`${apiUrl()}/v1/usage`);
    expect(res.status).toBe(401);
  });

  it('barge usage reports per tenant, model and day as a table, JSON and CSV', async () => {
    const json = await barge('usage', '--tenant', t.name, '--group-by', 'model', '--format', 'json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { tenant: t.name, model: 'gpt-4o', ...sum([big]) },
      { tenant: t.name, model: 'gpt-4o-mini', ...sum(mini) },
    ]);

    const csv = await barge(
      'usage',
      '--tenant',
      t.name,
      '--group-by',
      'model,day',
      '--format',
      'csv',
      '--since',
      yesterday,
    );
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      'tenant,model,day,batches,requests_total,requests_completed,requests_failed,input_tokens,cached_tokens,output_tokens,reasoning_tokens,total_tokens,cost_usd',
    );
    const s = sum([mini[1]]);
    expect(lines).toContain(
      [
        t.name,
        'gpt-4o-mini',
        yesterday,
        1,
        s.requests.total,
        s.requests.completed,
        s.requests.failed,
        s.input_tokens,
        0,
        s.output_tokens,
        0,
        s.total_tokens,
        '',
      ].join(','),
    );
    expect(lines).toHaveLength(4);

    const since = await barge('usage', '--tenant', t.name, '--since', today, '--format', 'json');
    expect(JSON.parse(since.stdout)).toEqual([{ tenant: t.name, ...sum([mini[0], big]) }]);

    // Across tenants: both test tenants appear (among others of the shared stack).
    const across = JSON.parse((await barge('usage', '--format', 'json')).stdout) as { tenant: string }[];
    expect(across.map((r) => r.tenant)).toEqual(expect.arrayContaining([t.name, other.name]));

    const table = await barge('usage', '--tenant', t.name, '--group-by', 'day');
    expect(table.stdout.split('\n')[0]).toMatch(/^TENANT\s+DAY\s+BATCHES\s+REQUESTS TOTAL/);

    for (const [args, message] of [
      [['usage', '--format', 'xml'], /--format wants one of table, json, csv/],
      [['usage', '--since', 'last week'], /--since wants a date/],
      [['usage', '--group-by', 'tenant'], /Invalid value for '--group-by'/],
      [['usage', '--tenant', 'no-such-tenant-ever'], /no tenant "no-such-tenant-ever"/],
    ] as [string[], RegExp][]) {
      const run = await barge(...args);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(message);
    }
  });
});
