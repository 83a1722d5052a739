import { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import OpenAI, { toFile } from 'openai';
import { createTenant, openaiFor, TestTenant, uniqueTenant } from '../support/api';
import { apiUrl, startApi, stopProcess, waitFor } from '../support/stack';
import { storedFor } from '../support/storage';

const LINE = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n';

interface ErrorAnswer {
  status: number;
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Posts a form whose parts go in exactly the given order. */
async function post(
  baseUrl: string,
  key: string,
  parts: [string, string | Blob, string?][],
): Promise<ErrorAnswer> {
  const form = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, filename);
  }
  const res = await fetch(`${baseUrl}/v1/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  return { status: res.status, ...((await res.json()) as Omit<ErrorAnswer, 'status'>) };
}

/** Refused uploads, through the stack's API: each leaves nothing behind. */
describe('POST /v1/files refusals', () => {
  let tenant: TestTenant;
  let client: OpenAI;

  beforeAll(async () => {
    tenant = await createTenant(uniqueTenant('upload-errors'));
    client = openaiFor(tenant.key, { maxRetries: 0 });
  });

  // Nothing here is ever accepted: after each case the tenant has stored nothing at all.
  afterEach(async () => {
    expect(await storedFor(tenant.tenantId)).toEqual({ rows: 0, objects: [], uploads: [] });
  });

  const sdkError = async (params: Record<string, unknown>) => {
    const err = await client.files.create(params as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const { status, error } = err as InstanceType<typeof OpenAI.APIError>;
    return { status, error } as ErrorAnswer;
  };

  it('refuses purposes that are unknown or not uploadable, before or after the file part', async () => {
    const file = await toFile(Buffer.from(LINE), 'in.jsonl');
    for (const purpose of ['batch_output', 'nonsense']) {
      const after = await sdkError({ file, purpose }); // openai-node sends the file first
      expect(after).toMatchObject({ status: 400, error: { param: 'purpose', code: 'invalid_value' } });
      const before = await post(apiUrl(), tenant.key, [
        ['purpose', purpose],
        ['file', new Blob([LINE]), 'in.jsonl'],
      ]);
      expect(before).toMatchObject({
        status: 400,
        error: { param: 'purpose', type: 'invalid_request_error' },
      });
    }
  });

  it('refuses a batch file that is evidently not JSONL', async () => {
    const csv = 'custom_id,prompt\na,hello\n';
    const sdk = await sdkError({ file: await toFile(Buffer.from(csv), 'in.jsonl'), purpose: 'batch' });
    expect(sdk).toMatchObject({ status: 400, error: { param: 'file', code: 'invalid_file_format' } });
    const early = await post(apiUrl(), tenant.key, [
      ['purpose', 'batch'],
      ['file', new Blob([csv]), 'in.jsonl'],
    ]);
    expect(early).toMatchObject({ status: 400, error: { param: 'file', code: 'invalid_file_format' } });

    const wrongName = await sdkError({ file: await toFile(Buffer.from(LINE), 'in.csv'), purpose: 'batch' });
    expect(wrongName).toMatchObject({
      status: 400,
      error: { param: 'file', message: expect.stringContaining('.jsonl') },
    });
    const empty = await sdkError({ file: await toFile(Buffer.from('\n'), 'in.jsonl'), purpose: 'batch' });
    expect(empty).toMatchObject({ status: 400, error: { code: 'empty_file' } });
  });

  it('refuses forms without a file or a purpose, and bodies that are not forms', async () => {
    expect(await post(apiUrl(), tenant.key, [['purpose', 'batch']])).toMatchObject({
      status: 400,
      error: { param: 'file', message: "Missing required parameter: 'file'." },
    });
    expect(await post(apiUrl(), tenant.key, [['file', new Blob([LINE]), 'in.jsonl']])).toMatchObject({
      status: 400,
      error: { param: 'purpose' },
    });
    expect(
      await post(apiUrl(), tenant.key, [
        ['purpose', 'user_data'],
        ['file', new Blob(['a']), 'a.txt'],
        ['file', new Blob(['b']), 'b.txt'],
      ]),
    ).toMatchObject({ status: 400, error: { param: 'file' } });

    const json = await fetch(`${apiUrl()}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'batch' }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: { code: 'invalid_content_type' } });
  });

  it('leaves no row, object or unfinished upload behind when the client goes away mid-upload', async () => {
    const boundary = 'abort-boundary';
    const req = request(`${apiUrl()}/v1/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tenant.key}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
    });
    req.on('error', () => undefined); // we are the ones cutting it
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n`);
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`);
    const block = Buffer.alloc(1024 * 1024, 'x');
    // Past one 8 MiB storage part, so a multipart upload is under way when we hang up.
    for (let i = 0; i < 20; i++) req.write(block);
    await waitFor(
      'a multipart upload to start',
      async () => (await storedFor(tenant.tenantId)).uploads.length > 0,
      15_000,
    );
    req.destroy();

    const after = await waitFor(
      'the upload to be aborted',
      async () => {
        const stored = await storedFor(tenant.tenantId);
        return stored.uploads.length === 0 && stored;
      },
      15_000,
    );
    expect(after).toEqual({ rows: 0, objects: [], uploads: [] });
  });
});

/** Size caps, against an API process of the test's own with tiny limits. */
describe('POST /v1/files size caps', () => {
  let api: ChildProcess;
  let baseUrl: string;
  let tenant: TestTenant;
  let client: OpenAI;

  beforeAll(async () => {
    ({ api, url: baseUrl } = await startApi({
      BARGE_MAX_BATCH_FILE_BYTES: '1000',
      BARGE_MAX_FILE_BYTES: '5000',
    }));
    tenant = await createTenant(uniqueTenant('upload-caps'));
    client = openaiFor(tenant.key, { baseUrl, maxRetries: 0 });
  });

  afterAll(() => stopProcess(api));

  const batchOf = (bytes: number) => {
    const line = LINE.trimEnd();
    return line + ' '.repeat(bytes - line.length - 1) + '\n';
  };

  it('accepts a batch file of exactly the cap', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(batchOf(1000)), 'ok.jsonl'),
      purpose: 'batch',
    });
    expect(file.bytes).toBe(1000);
    await client.files.delete(file.id);
  });

  it('answers 413 file_too_large for a batch file over its cap, whichever part comes first', async () => {
    const sdk = await client.files
      .create({ file: await toFile(Buffer.from(batchOf(1001)), 'big.jsonl'), purpose: 'batch' })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(sdk).toMatchObject({ status: 413, error: { code: 'file_too_large', param: 'file' } });

    // Purpose first: refused at byte 1001 while the client is still sending 512 KiB; the rest
    // of the body is read and dropped so the client still gets the answer. (A body declared
    // larger than any file plus its form, 1 MiB, is refused before it streams at all.)
    const early = await post(baseUrl, tenant.key, [
      ['purpose', 'batch'],
      ['file', new Blob([LINE, Buffer.alloc(512 * 1024, ' ')]), 'big.jsonl'],
    ]);
    expect(early).toMatchObject({
      status: 413,
      error: {
        code: 'file_too_large',
        type: 'invalid_request_error',
        message: expect.stringContaining('1000 bytes'),
      },
    });
  });

  it('answers 413 for any file over the general cap', async () => {
    const err = await client.files
      .create({ file: await toFile(Buffer.alloc(5001), 'blob.bin'), purpose: 'user_data' })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err).toMatchObject({ status: 413, error: { code: 'file_too_large' } });
    expect(await storedFor(tenant.tenantId)).toMatchObject({ objects: [], uploads: [] });
  });
});
