import { ChunkPlanner, ErrorList, InputScan, type ScanLimits } from '../../src/batches/validate/input-scan';
import type { JsonlLine } from '../../src/batches/validate/jsonl-lines';

const LIMITS: ScanLimits = {
  maxRequests: 1_000,
  chunkMaxRequests: 3,
  chunkMaxBytes: 1_000_000,
  maxListedErrors: 100,
  maxErrorBytes: 64 * 1024,
};

/** Lines as jsonlLines yields them: byte spans of one file, each line ending in "\n". */
function linesOf(texts: string[]): JsonlLine[] {
  let offset = 0;
  return texts.map((text, i) => {
    const bytes = Buffer.from(text);
    const line = { line: i + 1, start: offset, end: offset + bytes.length + 1, bytes };
    offset = line.end;
    return line;
  });
}

const request = (id: string, model = 'gpt-4o-mini', extra: object = {}) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: id }], ...extra },
  });

function scan(texts: string[], limits: Partial<ScanLimits> = {}, modelOk = true) {
  const s = new InputScan('/v1/chat/completions', { ...LIMITS, ...limits }, () =>
    modelOk ? { ok: true } : { ok: false, reason: 'nobody serves it' },
  );
  for (const line of linesOf(texts)) s.add(line);
  return s.finish();
}

describe('InputScan', () => {
  it('plans chunks of consecutive requests, blank lines inside their span', () => {
    const result = scan([request('a'), '', request('b'), request('c'), request('d'), '  ']);
    expect(result).toMatchObject({ ok: true, total: 4, model: 'gpt-4o-mini' });
    if (!result.ok) throw new Error('expected ok');
    expect(result.chunks.map((c) => [c.idx, c.firstLine, c.lineCount, c.requestCount])).toEqual([
      [0, 1, 4, 3],
      [1, 5, 1, 1],
    ]);
    // Byte ranges tile the requests: chunk 1 starts where line 5 starts.
    expect(result.chunks[1].byteStart).toBe(result.chunks[0].byteEnd);
  });

  it('cuts a chunk by bytes too, and gives a line larger than the cap a chunk of its own', () => {
    const big = request('big', 'gpt-4o-mini', { pad: 'x'.repeat(500) });
    const result = scan([request('a'), request('b'), big, request('c')], {
      chunkMaxRequests: 100,
      chunkMaxBytes: 300,
    });
    if (!result.ok) throw new Error('expected ok');
    expect(result.chunks.map((c) => c.requestCount)).toEqual([2, 1, 1]);
    for (const c of result.chunks.filter((c) => c.requestCount > 1)) {
      expect(c.byteEnd - c.byteStart).toBeLessThanOrEqual(300);
    }
  });

  it('finds duplicate custom_ids and a second model, naming the lines', () => {
    const result = scan([request('a'), request('b'), request('a'), request('c', 'other-model')]);
    expect(result).toMatchObject({ ok: false, total: 4 });
    if (result.ok) throw new Error('expected errors');
    expect(result.errors.map((e) => [e.code, e.line])).toEqual([
      ['duplicate_custom_id', 3],
      ['mismatched_model', 4],
    ]);
  });

  it('reports an empty file, too many requests, and a model nobody serves', () => {
    const empty = scan(['', ' ']);
    expect(!empty.ok && empty.errors.map((e) => e.code)).toEqual(['empty_file']);
    const many = scan([request('a'), request('b'), request('c')], { maxRequests: 2 });
    expect(!many.ok && many.errors.map((e) => e.code)).toEqual(['too_many_requests_in_batch']);
    const unserved = scan([request('a')], {}, false);
    expect(!unserved.ok && unserved.errors).toEqual([
      { code: 'model_not_found', message: 'nobody serves it', param: 'body.model', line: 1 },
    ]);
  });

  it('bounds what it echoes of a hostile custom_id', () => {
    const id = 'x'.repeat(400);
    const result = scan([request(id), request(id)]);
    if (result.ok) throw new Error('expected errors');
    expect(result.errors[0].message.length).toBeLessThan(400);
  });
});

describe('ErrorList', () => {
  const error = (line: number, message = 'bad') => ({
    code: 'invalid_json_line',
    message,
    param: null,
    line,
  });

  it('lists up to its count and counts the rest in one closing entry', () => {
    const list = new ErrorList({ maxListedErrors: 2, maxErrorBytes: 1 << 20 });
    for (let i = 1; i <= 5; i++) list.add(error(i));
    const items = list.finish();
    expect(items.map((e) => e.line)).toEqual([1, 2, null]);
    expect(items[2]).toMatchObject({
      code: 'too_many_errors',
      message: '3 more errors were found and not listed.',
    });
    expect(list.count).toBe(5);
  });

  it('lists up to its byte budget whatever the count', () => {
    const list = new ErrorList({ maxListedErrors: 1_000, maxErrorBytes: 2_000 });
    for (let i = 1; i <= 100; i++) list.add(error(i, 'm'.repeat(200)));
    const items = list.finish();
    expect(Buffer.byteLength(JSON.stringify(items.slice(0, -1)))).toBeLessThanOrEqual(2_000);
    expect(items.length).toBeLessThan(20);
    expect(items[items.length - 1].code).toBe('too_many_errors');
  });
});

describe('ChunkPlanner', () => {
  it('plans nothing for no requests', () => {
    expect(new ChunkPlanner({ chunkMaxRequests: 10, chunkMaxBytes: 100 }).finish()).toEqual([]);
  });
});
