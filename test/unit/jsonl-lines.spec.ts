import { Readable } from 'node:stream';
import {
  isBlank,
  jsonlLines,
  LineTooLongError,
  MAX_LINE_BYTES,
} from '../../src/batches/validate/jsonl-lines';

async function collect(parts: (string | Buffer)[], options = {}) {
  const out = [];
  for await (const l of jsonlLines(Readable.from(parts.map((p) => Buffer.from(p))), options)) {
    out.push({ line: l.line, start: l.start, end: l.end, text: l.bytes.toString() });
  }
  return out;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

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

  it('strips a BOM at byte 0 from line 1, keeping the byte offsets of the file', async () => {
    const file = Buffer.concat([BOM, Buffer.from('{"a":1}\n{"b":2}\n')]);
    const lines = await collect([file]);
    expect(lines).toEqual([
      { line: 1, start: 0, end: 11, text: '{"a":1}' },
      { line: 2, start: 11, end: 19, text: '{"b":2}' },
    ]);
    // A ranged re-read of the first chunk (offset 0) sees the same line 1.
    expect(await collect([file.subarray(0, 11)], { offset: 0 })).toEqual([lines[0]]);
  });

  it('strips a BOM split across reads, and one before a last line without newline', async () => {
    expect(await collect([BOM.subarray(0, 1), BOM.subarray(1), '{}\n'])).toEqual([
      { line: 1, start: 0, end: 6, text: '{}' },
    ]);
    expect(await collect([Buffer.concat([BOM, Buffer.from('{}')])])).toEqual([
      { line: 1, start: 0, end: 5, text: '{}' },
    ]);
  });

  it('keeps a BOM anywhere but at byte 0 (a later line, or a chunk read from an offset)', async () => {
    const later = await collect([Buffer.concat([Buffer.from('{}\n'), BOM, Buffer.from('{}\n')])]);
    expect(later[1].text).toBe('\ufeff{}');
    const ranged = await collect([Buffer.concat([BOM, Buffer.from('{}\n')])], { firstLine: 5, offset: 300 });
    expect(ranged[0].text).toBe('\ufeff{}');
  });

  it('refuses a line longer than the cap instead of buffering it', async () => {
    await expect(collect(['x'.repeat(50), 'y'.repeat(60)], { maxLineBytes: 100 })).rejects.toBeInstanceOf(
      LineTooLongError,
    );
  });

  it('holds the cap exactly, also for a line that arrives in one read, and counts neither CR nor BOM', async () => {
    expect(await collect([`${'x'.repeat(100)}\r\n`], { maxLineBytes: 100 })).toHaveLength(1);
    expect(
      await collect([Buffer.concat([BOM, Buffer.from(`${'x'.repeat(100)}\n`)])], { maxLineBytes: 100 }),
    ).toHaveLength(1);
    await expect(collect([`${'x'.repeat(101)}\n`], { maxLineBytes: 100 })).rejects.toMatchObject({ line: 1 });
    await expect(collect(['{}\n', 'x'.repeat(101)], { maxLineBytes: 100 })).rejects.toMatchObject({
      line: 2,
    });
  });

  it('documents its limit: 64 MiB per line', () => {
    expect(MAX_LINE_BYTES).toBe(64 * 1024 * 1024);
    expect(new LineTooLongError(7, MAX_LINE_BYTES).message).toBe(
      `Line 7 is longer than ${MAX_LINE_BYTES} bytes, the limit for one request.`,
    );
  });

  it('knows blank lines', () => {
    expect(isBlank(Buffer.from(' \t\r'))).toBe(true);
    expect(isBlank(Buffer.from(' {}'))).toBe(false);
  });
});
