import { request } from 'node:http';
import { apiUrl, waitFor } from '../support/stack';
import { storedFor, StoredForTenant } from '../support/storage';
import {
  Answer,
  bearer,
  expectAnswer,
  expectRawAnswer,
  hostileSuite,
  itStillServesNormalBatches,
  rawExchange,
  send,
} from './support';

const LINE = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n';
const BOUNDARY = 'hostile-boundary';

type Part =
  | { field: string; value: string | Buffer }
  | { file: string; filename?: string; content: string | Buffer; headers?: string[] }
  | { raw: string };

/** A multipart body exactly as written: parts in order, then the closing boundary (unless told not to). */
function multipart(parts: Part[], options: { close?: boolean; boundary?: string } = {}): Buffer {
  const b = options.boundary ?? BOUNDARY;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    if ('raw' in part) {
      chunks.push(Buffer.from(part.raw));
      continue;
    }
    chunks.push(Buffer.from(`--${b}\r\n`));
    if ('field' in part) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${part.field}"\r\n\r\n`));
      chunks.push(Buffer.from(part.value));
    } else {
      const filename = part.filename === undefined ? '' : `; filename="${part.filename}"`;
      const extra = (part.headers ?? []).map((h) => `${h}\r\n`).join('');
      chunks.push(
        Buffer.from(`Content-Disposition: form-data; name="${part.file}"${filename}\r\n${extra}\r\n`),
      );
      chunks.push(Buffer.from(part.content));
    }
    chunks.push(Buffer.from('\r\n'));
  }
  if (options.close !== false) chunks.push(Buffer.from(`--${b}--\r\n`));
  return Buffer.concat(chunks);
}

const purpose = (value: string): Part => ({ field: 'purpose', value });
const file = (content: string | Buffer, filename = 'in.jsonl', name = 'file'): Part => ({
  file: name,
  filename,
  content,
});

/**
 * Hostile input: uploads. Every refusal is the right 4xx in the envelope, the process survives
 * it, and nothing is left behind: no object, no unfinished multipart upload, no row.
 */
describe('hostile: uploads', () => {
  const suite = hostileSuite('uploads');

  const upload = (body: Buffer, contentType = `multipart/form-data; boundary=${BOUNDARY}`): Promise<Answer> =>
    send('POST', '/v1/files', {
      headers: { ...bearer(suite.tenant().key), 'content-type': contentType },
      body,
    });

  let before: StoredForTenant;
  beforeEach(async () => {
    before = await storedFor(suite.tenant().tenantId);
  });

  /** The tenant's storage is as it was before the case, once any aborted upload is cleaned up. */
  const expectNothingLeft = async () => {
    const same = (s: StoredForTenant) => JSON.stringify(s) === JSON.stringify(before);
    const after = await waitFor(
      'the refused upload to leave nothing behind',
      async () => {
        const s = await storedFor(suite.tenant().tenantId);
        return same(s) && s;
      },
      15_000,
    ).catch(() => storedFor(suite.tenant().tenantId));
    expect(after).toEqual(before);
  };

  // [case, body, status, param, code]. All are refused; none may leave anything behind.
  const refused: [string, Buffer, number, string | null | undefined, string | null | undefined][] = [
    // Names of parts and files: the classes that used to kill the process.
    [
      'a file under another part name, purpose first',
      multipart([purpose('batch'), file(LINE, 'in.jsonl', 'document')]),
      400,
      'document',
      undefined,
    ],
    [
      'a file under another part name, purpose after',
      multipart([file(LINE, 'in.jsonl', 'document'), purpose('batch')]),
      400,
      'document',
      undefined,
    ],
    [
      'a batch file named .json, purpose first',
      multipart([purpose('batch'), file(LINE, 'requests.json')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a batch file named .json, purpose after',
      multipart([file(LINE, 'requests.json'), purpose('batch')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a batch file named .txt',
      multipart([purpose('batch'), file(LINE, 'requests.txt')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a batch file named ../../etc/passwd',
      multipart([purpose('batch'), file(LINE, '../../etc/passwd')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a batch file named .jsonl.exe',
      multipart([purpose('batch'), file(LINE, 'in.jsonl.exe')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a batch file without a file name',
      multipart([
        purpose('batch'),
        { file: 'file', content: LINE, headers: ['Content-Type: application/octet-stream'] },
      ]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a file part named like a field',
      multipart([purpose('batch'), file(LINE, 'in.jsonl', 'purpose')]),
      400,
      'purpose',
      undefined,
    ],
    [
      'two files',
      multipart([purpose('user_data'), file('a', 'a.txt'), file('b', 'b.txt')]),
      400,
      'file',
      'invalid_value',
    ],
    [
      'two files, the second under another name',
      multipart([purpose('user_data'), file('a', 'a.txt'), file('b', 'b.txt', 'other')]),
      400,
      'file',
      'invalid_value',
    ],
    // Fields.
    ['no file', multipart([purpose('batch')]), 400, 'file', undefined],
    ['no purpose', multipart([file(LINE)]), 400, 'purpose', undefined],
    [
      'purpose twice',
      multipart([purpose('batch'), purpose('batch'), file(LINE)]),
      400,
      'purpose',
      'invalid_value',
    ],
    [
      'purpose twice around the file',
      multipart([purpose('batch'), file(LINE), purpose('user_data')]),
      400,
      'purpose',
      'invalid_value',
    ],
    ['purpose with a NUL', multipart([purpose('batch\u0000'), file(LINE)]), 400, 'purpose', 'invalid_text'],
    [
      'purpose with a NUL after the file',
      multipart([file(LINE), purpose('\u0000')]),
      400,
      'purpose',
      'invalid_text',
    ],
    [
      'purpose as encoded surrogate bytes',
      multipart([{ field: 'purpose', value: Buffer.from([0xed, 0xa0, 0x80]) }, file(LINE)]),
      400,
      'purpose',
      'invalid_value',
    ],
    ['an unknown purpose', multipart([purpose('evil'), file(LINE)]), 400, 'purpose', 'invalid_value'],
    [
      'purpose batch_output (system only)',
      multipart([purpose('batch_output'), file(LINE)]),
      400,
      'purpose',
      'invalid_value',
    ],
    [
      'a 10 KB purpose',
      multipart([purpose('p'.repeat(10_000)), file(LINE)]),
      400,
      'purpose',
      'invalid_value',
    ],
    [
      'seventeen fields',
      multipart([
        ...Array.from({ length: 17 }, (_, i) => ({ field: `f${i}`, value: 'x' })),
        purpose('batch'),
        file(LINE),
      ]),
      400,
      null,
      'invalid_value',
    ],
    [
      'expires_after with seconds only',
      multipart([
        purpose('user_data'),
        { field: 'expires_after[seconds]', value: '3600' },
        file('x', 'x.bin'),
      ]),
      400,
      'expires_after[anchor]',
      undefined,
    ],
    [
      'expires_after with a NUL',
      multipart([
        purpose('user_data'),
        { field: 'expires_after[anchor]', value: 'created_at\u0000' },
        file('x', 'x.bin'),
      ]),
      400,
      'expires_after[anchor]',
      'invalid_text',
    ],
    [
      'expires_after seconds huge',
      multipart([
        purpose('user_data'),
        { field: 'expires_after[anchor]', value: 'created_at' },
        { field: 'expires_after[seconds]', value: '9'.repeat(400) },
        file('x', 'x.bin'),
      ]),
      400,
      'expires_after[seconds]',
      'invalid_value',
    ],
    // Contents of a batch file.
    ['an empty batch file', multipart([purpose('batch'), file('')]), 400, 'file', 'empty_file'],
    [
      'a batch file of blank lines',
      multipart([purpose('batch'), file('\n\r\n  \n')]),
      400,
      'file',
      'empty_file',
    ],
    ['a batch file of a BOM alone', multipart([purpose('batch'), file('\ufeff')]), 400, 'file', 'empty_file'],
    [
      'a CSV batch file',
      multipart([purpose('batch'), file('custom_id,prompt\na,hi\n')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a JSON array batch file',
      multipart([purpose('batch'), file('[{"a":1}]\n')]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a UTF-16 batch file',
      multipart([purpose('batch'), file(Buffer.from('\ufeff' + LINE, 'utf16le'))]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'binary garbage as a batch file',
      multipart([purpose('batch'), file(Buffer.from([0, 1, 2, 255, 254, 10, 0]))]),
      400,
      'file',
      'invalid_file_format',
    ],
    [
      'a non-JSONL batch file, purpose after',
      multipart([file('hello\n'), purpose('batch')]),
      400,
      'file',
      'invalid_file_format',
    ],
    // The body itself.
    [
      'a form without a closing boundary',
      multipart([purpose('batch'), file(LINE)], { close: false }),
      400,
      null,
      undefined,
    ],
    [
      'a form that ends inside the file part',
      Buffer.concat([
        multipart([purpose('batch')], { close: false }),
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"a":`,
        ),
      ]),
      400,
      null,
      undefined,
    ],
    [
      'a malformed part header',
      multipart([
        { raw: `--${BOUNDARY}\r\nContent-Disposition form-data name purpose\r\n\r\nbatch\r\n` },
        file(LINE),
      ]),
      400,
      undefined,
      undefined,
    ],
    ['a body with no parts at all', Buffer.from(`--${BOUNDARY}--\r\n`), 400, 'file', undefined],
    ['an empty body', Buffer.alloc(0), 400, undefined, undefined],
    [
      'random bytes',
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
      400,
      undefined,
      undefined,
    ],
  ];

  it.each(refused)('refuses %s, leaving nothing behind', async (_name, body, status, param, code) => {
    const expected = { status, ...(param !== undefined && { param }), ...(code !== undefined && { code }) };
    expectAnswer(await upload(body), expected);
    await expectNothingLeft();
  });

  it.each([
    ['no content type', undefined],
    ['application/json', 'application/json'],
    ['text/plain', 'text/plain'],
    ['multipart without a boundary', 'multipart/form-data'],
    ['multipart/mixed', `multipart/mixed; boundary=${BOUNDARY}`],
    ['a boundary that never occurs', 'multipart/form-data; boundary=other'],
    ['a 500-character boundary', `multipart/form-data; boundary=${'b'.repeat(500)}`],
  ])('refuses a body with %s', async (_name, contentType) => {
    const answer = await send('POST', '/v1/files', {
      headers: { ...bearer(suite.tenant().key), ...(contentType && { 'content-type': contentType }) },
      body: multipart([purpose('batch'), file(LINE)]),
    });
    expectAnswer(answer, { status: 400 });
    await expectNothingLeft();
  });

  it('answers 413 at once for a body declared larger than any file may be', async () => {
    const head =
      `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${suite.tenant().key}\r\n` +
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: 100000000000\r\n\r\n`;
    const result = await rawExchange([head, `--${BOUNDARY}\r\n`], { waitMs: 2_000 });
    expectRawAnswer(result, { status: 413, code: 'file_too_large' });
    await expectNothingLeft();
  });

  // Client aborts at every stage: the request is cut, nothing answers, nothing may remain.
  const aborts: [string, Buffer][] = [
    ['before any part', Buffer.from(`--${BOUNDARY}\r\nContent-Disp`)],
    ['after the purpose', multipart([purpose('batch')], { close: false })],
    [
      'inside the file part',
      Buffer.concat([
        multipart([purpose('batch')], { close: false }),
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n${LINE}${LINE}`,
        ),
      ]),
    ],
    [
      'inside a refused file part',
      Buffer.concat([
        multipart([purpose('batch')], { close: false }),
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n\r\n${LINE}`,
        ),
      ]),
    ],
    ['after the whole file, before the end', multipart([file(LINE), purpose('batch')], { close: false })],
  ];

  it.each(aborts)('survives a client that goes away %s', async (_name, start) => {
    const req = request(`${apiUrl()}/v1/files`, {
      method: 'POST',
      headers: {
        ...bearer(suite.tenant().key),
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(start.length + 100_000),
      },
    });
    req.on('error', () => undefined); // we are the ones cutting it
    req.write(start);
    await new Promise((r) => setTimeout(r, 300));
    req.destroy();
    await expectNothingLeft();
  });

  it('survives a client that goes away mid-way through a multi-part storage upload', async () => {
    const req = request(`${apiUrl()}/v1/files`, {
      method: 'POST',
      headers: { ...bearer(suite.tenant().key), 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    });
    req.on('error', () => undefined);
    req.write(multipart([purpose('user_data')], { close: false }));
    req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`);
    // Past one 8 MiB storage part, so a multipart upload is under way when we hang up.
    for (let i = 0; i < 12; i++) req.write(Buffer.alloc(1024 * 1024, 'x'));
    await waitFor(
      'a storage upload to start',
      async () => (await storedFor(suite.tenant().tenantId)).uploads.length > 0,
      15_000,
    );
    req.destroy();
    await expectNothingLeft();
  });

  // Accepted uploads: unusual but valid. Each is removed again, so the checks above stay exact.
  const accepted: [string, Buffer, Record<string, unknown>][] = [
    ['a batch file with a BOM', multipart([purpose('batch'), file(`\ufeff${LINE}`)]), { purpose: 'batch' }],
    [
      'a batch file with CRLF line ends',
      multipart([purpose('batch'), file(LINE.replace('\n', '\r\n'))]),
      { purpose: 'batch' },
    ],
    [
      'a .JSONL name in capitals',
      multipart([purpose('batch'), file(LINE, 'IN.JSONL')]),
      { filename: 'IN.JSONL' },
    ],
    [
      'a file name with a NUL, a newline and a bidi override',
      multipart([
        purpose('user_data'),
        {
          raw: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''a%00b%0A%E2%80%AEc.txt\r\n\r\nx\r\n`,
        },
      ]),
      { filename: 'abc.txt' },
    ],
    [
      'a file name with an encoded surrogate',
      multipart([
        purpose('user_data'),
        {
          raw: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''a%ED%A0%80b.txt\r\n\r\nx\r\n`,
        },
      ]),
      { bytes: 1 },
    ],
    [
      'a file name of 1,000 characters',
      multipart([purpose('batch'), file(LINE, `${'n'.repeat(1000)}.jsonl`)]),
      { purpose: 'batch' },
    ],
    [
      'an unknown field with a 2,000-byte name (ignored)',
      multipart([{ field: 'n'.repeat(2000), value: 'x' }, purpose('user_data'), file('x', 'x.bin')]),
      { bytes: 1 },
    ],
    [
      'unknown fields (ignored)',
      multipart([{ field: 'note', value: 'hello\u0000' }, purpose('user_data'), file('x', 'x.bin')]),
      { purpose: 'user_data' },
    ],
    [
      'a part with Content-Transfer-Encoding (kept as bytes)',
      multipart([
        purpose('user_data'),
        { file: 'file', filename: 'b.bin', content: 'eA==', headers: ['Content-Transfer-Encoding: base64'] },
      ]),
      { bytes: 4 },
    ],
    [
      'a preamble before the first boundary',
      Buffer.concat([
        Buffer.from('ignored preamble\r\n'),
        multipart([purpose('user_data'), file('x', 'x.bin')]),
      ]),
      { bytes: 1 },
    ],
  ];

  it.each(accepted)('accepts %s', async (_name, body, expected) => {
    const answer = await upload(body);
    const created = expectAnswer(answer, { status: 200 });
    expect(created).toMatchObject(expected);
    await suite.client().files.delete(created.id as string);
    // The row stays (batches reference rows); its object goes with the delete.
    const after = await storedFor(suite.tenant().tenantId);
    expect(after).toEqual({ rows: before.rows + 1, objects: before.objects, uploads: [] });
  });

  it('accepts a chunked upload (no Content-Length)', async () => {
    const head =
      `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${suite.tenant().key}\r\n` +
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const body = multipart([purpose('user_data'), file('chunked!', 'c.txt')]);
    const chunk = (b: Buffer) =>
      Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const result = await rawExchange(
      [head, chunk(body.subarray(0, 50)), chunk(body.subarray(50)), '0\r\n\r\n'],
      {
        waitMs: 5_000,
      },
    );
    expectRawAnswer(result, { status: 200 });
    const created = JSON.parse(result.responses[0].body) as { id: string; bytes: number };
    expect(created.bytes).toBe(8);
    await suite.client().files.delete(created.id);
  });

  itStillServesNormalBatches(suite);
});
