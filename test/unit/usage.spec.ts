import { parseCliDate } from '../../src/cli/operator-requests';
import { OpenAIError } from '../../src/common/openai-error';
import { costOfParts, PriceBook } from '../../src/upstreams/prices';
import { parseGroupBy, parseUnixSeconds, toFigures, usageCsv, UsageRow } from '../../src/tenants/usage';

const figures = toFigures({
  batches: 2,
  total: '5',
  completed: '4',
  failed: '1',
  input_tokens: '100',
  cached_tokens: '10',
  output_tokens: '50',
  reasoning_tokens: '5',
});

describe('usage (pure logic)', () => {
  it('shapes summed counters like the Batch object, total_tokens included', () => {
    expect(figures).toEqual({
      batches: 2,
      requests: { total: 5, completed: 4, failed: 1 },
      input_tokens: 100,
      input_tokens_details: { cached_tokens: 10 },
      output_tokens: 50,
      output_tokens_details: { reasoning_tokens: 5 },
      total_tokens: 150,
    });
  });

  it('parses group_by, comma-separated or repeated, each group once', () => {
    expect(parseGroupBy(undefined)).toEqual([]);
    expect(parseGroupBy('model')).toEqual(['model']);
    expect(parseGroupBy('day,model')).toEqual(['day', 'model']);
    expect(parseGroupBy(['model', 'day', 'model'])).toEqual(['model', 'day']);
    expect(() => parseGroupBy('tenant')).toThrow(OpenAIError);
    expect(() => parseGroupBy({ x: 1 })).toThrow(/Invalid value for 'group_by'/);
  });

  it('parses Unix seconds', () => {
    expect(parseUnixSeconds({ start_time: '1764633600' }, 'start_time')).toEqual(
      new Date('2025-12-02T00:00:00Z'),
    );
    expect(parseUnixSeconds({}, 'start_time')).toBeUndefined();
    for (const bad of ['-1', '1.5', 'yesterday', '']) {
      expect(() => parseUnixSeconds({ start_time: bad }, 'start_time')).toThrow(/expected Unix seconds/);
    }
    expect(() => parseUnixSeconds({ start_time: ['1', '2'] }, 'start_time')).toThrow(/single value/);
  });

  it('writes CSV with only the grouped columns, quoting where needed', () => {
    const rows: UsageRow[] = [
      { tenant: 'a,b', model: null, ...figures, cost: { value: 0.25, currency: 'usd', unpriced_models: [] } },
      { tenant: 'c', model: 'x', ...figures, cost: { value: null, currency: 'usd', unpriced_models: ['x'] } },
    ];
    expect(usageCsv(rows, ['tenant', 'model']).split('\n')).toEqual([
      'tenant,model,batches,requests_total,requests_completed,requests_failed,input_tokens,cached_tokens,output_tokens,reasoning_tokens,total_tokens,cost_usd',
      '"a,b",,2,5,4,1,100,10,50,5,150,0.25',
      'c,x,2,5,4,1,100,10,50,5,150,',
    ]);
  });

  it("costs each part at its upstream's price, and names the models without one", () => {
    const prices = new PriceBook({
      batchDiscount: 0.5,
      defaultMaxOutputTokens: 1,
      models: [
        { model: 'a', upstream: 'cheap', input: 1, output: 2 },
        { model: 'a', input: 2, output: 4 },
      ],
    });
    const parts = [
      { model: 'a', upstream: 'cheap', input: 1_000_000, output: 500_000 }, // (1 + 1) / 2 = 1
      { model: 'a', upstream: 'dear', input: 250_000, output: 0 }, // 0.5 / 2 = 0.25
      { model: 'a', upstream: null, input: 0, output: 250_000 }, // unknown upstream: generic, 1 / 2
      { model: 'b', upstream: 'cheap', input: 0, output: 0 }, // no tokens: no price needed
    ];
    expect(costOfParts(prices, parts)).toEqual({ value: 1.75, currency: 'usd', unpriced_models: [] });
    expect(costOfParts(prices, [...parts, { model: 'b', upstream: 'cheap', input: 1, output: 0 }])).toEqual({
      value: null,
      currency: 'usd',
      unpriced_models: ['b'],
    });
    expect(costOfParts(prices, [])).toEqual({ value: 0, currency: 'usd', unpriced_models: [] });
  });

  it('reads CLI dates as UTC days or ISO date-times', () => {
    expect(parseCliDate('since', '2026-12-01')).toEqual(new Date('2026-12-01T00:00:00Z'));
    expect(parseCliDate('since', '2026-12-01T12:30:00Z')).toEqual(new Date('2026-12-01T12:30:00Z'));
    for (const bad of ['last week', '12/01/2026', '2026-13-45']) {
      expect(() => parseCliDate('since', bad)).toThrow(/--since wants a date/);
    }
  });
});
