import { parseCliDate } from '../../src/cli/usage.command';
import { OpenAIError } from '../../src/common/openai-error';
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
    const rows: UsageRow[] = [{ tenant: 'a,b', model: null, ...figures }];
    expect(usageCsv(rows, ['tenant', 'model']).split('\n')).toEqual([
      'tenant,model,batches,requests_total,requests_completed,requests_failed,input_tokens,cached_tokens,output_tokens,reasoning_tokens,total_tokens',
      '"a,b",,2,5,4,1,100,10,50,5,150',
    ]);
  });

  it('reads CLI dates as UTC days or ISO date-times', () => {
    expect(parseCliDate('since', '2026-12-01')).toEqual(new Date('2026-12-01T00:00:00Z'));
    expect(parseCliDate('since', '2026-12-01T12:30:00Z')).toEqual(new Date('2026-12-01T12:30:00Z'));
    for (const bad of ['last week', '12/01/2026', '2026-13-45']) {
      expect(() => parseCliDate('since', bad)).toThrow(/--since wants a date/);
    }
  });
});
