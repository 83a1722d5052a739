import { FirstLineCheck } from '../../src/files/jsonl-check';

function verdictOf(...chunks: string[]): { streaming: string; final: string } {
  const check = new FirstLineCheck();
  for (const chunk of chunks) check.observe(Buffer.from(chunk));
  const streaming = check.verdict;
  return { streaming, final: check.finish() };
}

describe('FirstLineCheck', () => {
  it('accepts a JSON object as the first non-blank line, as soon as the line is complete', () => {
    expect(verdictOf('{"custom_id":"a"}\n', 'not json at all\n')).toEqual({
      streaming: 'jsonl',
      final: 'jsonl',
    });
    expect(verdictOf('\n  \r\n{"a":', '1}\r\n')).toEqual({ streaming: 'jsonl', final: 'jsonl' });
    expect(verdictOf('\ufeff{"a":1}\n')).toEqual({ streaming: 'jsonl', final: 'jsonl' });
  });

  it('judges a last line without newline when the stream ends', () => {
    expect(verdictOf('{"a":1}')).toEqual({ streaming: 'undecided', final: 'jsonl' });
    expect(verdictOf('hello')).toEqual({ streaming: 'undecided', final: 'not_jsonl' });
  });

  it('refuses text, arrays, scalars and broken JSON', () => {
    for (const first of ['hello world', '[1,2]', '42', 'null', '{"a":']) {
      expect(verdictOf(`${first}\n{"b":2}\n`).final).toBe('not_jsonl');
    }
  });

  it('calls an empty or blank file empty', () => {
    expect(verdictOf().final).toBe('empty');
    expect(verdictOf('\n\n', '  \n').final).toBe('empty');
  });

  it('decides on the opening character once a first line passes 1 MiB, holding no more', () => {
    const big = 'x'.repeat(1024 * 1024 + 10);
    expect(verdictOf(`{"input":"${big}`).streaming).toBe('jsonl');
    expect(verdictOf(big).streaming).toBe('not_jsonl');
  });
});
