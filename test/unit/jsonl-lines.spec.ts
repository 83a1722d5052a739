import { Readable } from 'node:stream';
import { isBlank, jsonlLines, LineTooLongError } from '../../src/batches/validate/jsonl-lines';

async function collect(parts: string[], options = {}) {
  const out = [];
  for await (const l of jsonlLines(Readable.from(parts.map((p) => Buffer.from(p))), options)) {
    out.push({ line: l.line, start: l.start, end: l.end, text: l.bytes.toString() });
  }
  return out;
}

describe('jsonlLines', () => {
  it('splits across read boundaries and reports byte spans', async () => {
    const text = 'ab\ncdé\n\nxyz';
    const lines = await collect(['a', 'b\ncd', 'é\n', '\nxy', 'z']);
    expect(lines.map((l) => l.text)).toEqual(['ab', 'cdé', '', 'xyz']);
    const bytes = Buffer.from(text);
    for (const l of lines) {
      expect(bytes.subarray(l.start, l.end).toString().replace(/\n$/, '')).toBe(l.text);
    }
    expect(lines[3]).toMatchObject({ line: 4, end: bytes.length });
  });

  it('strips CRLF and continues numbering from an offset', async () => {
    const lines = await collect(['{"a":1}\r\n{"b":2}\r\n'], { firstLine: 10, offset: 100 });
    expect(lines).toEqual([
      { line: 10, start: 100, end: 109, text: '{"a":1}' },
      { line: 11, start: 109, end: 118, text: '{"b":2}' },
    ]);
  });

  it('refuses a line longer than the cap instead of buffering it', async () => {
    await expect(collect(['x'.repeat(50), 'y'.repeat(60)], { maxLineBytes: 100 })).rejects.toBeInstanceOf(
      LineTooLongError,
    );
  });

  it('knows blank lines', () => {
    expect(isBlank(Buffer.from(' \t\r'))).toBe(true);
    expect(isBlank(Buffer.from(' {}'))).toBe(false);
  });
});
