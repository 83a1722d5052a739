import { bearer, expectAnswer, hostileSuite, itStillServesNormalBatches, send } from './support';

/**
 * Hostile input: query parameters of the list calls. Text Postgres cannot store answers 400
 * `invalid_text` naming the parameter; bad values answer 400 naming it; parameters we do not
 * know are ignored; every echo is bounded.
 */
describe('hostile: query parameters', () => {
  const suite = hostileSuite('query');

  // [case, query string, status, param, code]
  const cases: [string, string, number, string | null, string | null][] = [
    ['after with a NUL', 'after=%00', 400, 'after', 'invalid_text'],
    ['after with a NUL inside an id', 'after=file-abc%00', 400, 'after', 'invalid_text'],
    [
      'after with an encoded surrogate (kept undecoded, unknown id)',
      'after=%ED%A0%80',
      400,
      'after',
      'invalid_value',
    ],
    ['after 10,000 characters long', `after=${'a'.repeat(10_000)}`, 400, 'after', 'invalid_value'],
    ['after repeated', 'after=a&after=b', 400, 'after', 'invalid_value'],
    ['after unknown', 'after=file-000000000000000000000000', 400, 'after', 'invalid_value'],
    ['after with SQL', "after=x'%20OR%201=1--", 400, 'after', 'invalid_value'],
    ['after empty (no cursor)', 'after=', 200, null, null],
    ['limit with a NUL', 'limit=%00', 400, 'limit', 'invalid_text'],
    ['limit negative', 'limit=-1', 400, 'limit', 'integer_below_min_value'],
    ['limit zero', 'limit=0', 400, 'limit', 'integer_below_min_value'],
    ['limit in hex', 'limit=0x10', 400, 'limit', 'invalid_type'],
    ['limit in exponent form', 'limit=1e3', 400, 'limit', 'invalid_type'],
    ['limit huge', 'limit=99999999999999999999999', 400, 'limit', 'integer_above_max_value'],
    ['limit empty', 'limit=', 400, 'limit', 'invalid_type'],
    ['limit repeated', 'limit=1&limit=2', 400, 'limit', 'invalid_value'],
    ['limit 5,000 digits', `limit=${'9'.repeat(5000)}`, 400, 'limit', 'integer_above_max_value'],
    ['order with a NUL', 'order=asc%00', 400, 'order', 'invalid_text'],
    ['order in capitals', 'order=ASC', 400, 'order', 'invalid_value'],
    ['order 10,000 characters long', `order=${'x'.repeat(10_000)}`, 400, 'order', 'invalid_value'],
    ['purpose with a NUL', 'purpose=batch%00', 400, 'purpose', 'invalid_text'],
    ['purpose repeated', 'purpose=batch&purpose=user_data', 400, 'purpose', 'invalid_value'],
    ['purpose unknown (an empty list)', 'purpose=nonsense', 200, null, null],
    ['purpose 10,000 characters long (an empty list)', `purpose=${'p'.repeat(10_000)}`, 200, null, null],
    ['an unknown parameter with a NUL (ignored)', 'whatever=%00', 200, null, null],
    ['bracket syntax (a different, unknown parameter)', 'after[x]=1&limit[]=2', 200, null, null],
    [
      'a thousand parameters',
      Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`).join('&'),
      200,
      null,
      null,
    ],
    ['a bare ampersand soup', '&&&=&=&', 200, null, null],
  ];

  it.each(cases)('files: %s', async (_name, query, status, param, code) => {
    const answer = await send('GET', `/v1/files?${query}`, { headers: bearer(suite.tenant().key) });
    const body = expectAnswer(answer, status === 200 ? { status } : { status, param, code });
    if (status !== 200) expect((body.error as { message: string }).message.length).toBeLessThan(600);
  });

  // The batch list reads the same parameters through the same code; `purpose` is not one of them.
  const batchCases = cases.filter(([, query]) => !query.includes('purpose') && !query.includes('order='));

  it('checks a good share of the file cases against the batch list too', () => {
    expect(batchCases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(batchCases)('batches: %s', async (_name, query, status, param, code) => {
    const answer = await send('GET', `/v1/batches?${query}`, { headers: bearer(suite.tenant().key) });
    expectAnswer(answer, status === 200 ? { status } : { status, param, code });
  });

  itStillServesNormalBatches(suite);
});
