import { toFile } from 'openai';
import { gzipSync } from 'node:zlib';
import { chatLine, uploadJsonl, waitForStatus } from '../support/batches';
import { Answer, bearer, expectAnswer, hostileSuite, itStillServesNormalBatches, send } from './support';

/**
 * Hostile input: POST /v1/batches. Bodies of every shape, text Postgres cannot store in the
 * fields that are stored, headers, and Idempotency-Key reuse. Batches a case creates are
 * waited for until they end.
 */
describe('hostile: batch creation', () => {
  const suite = hostileSuite('create');
  let inputFileId: string;
  let userDataFileId: string;

  beforeAll(async () => {
    inputFileId = (await uploadJsonl(suite.client(), [chatLine('c-1')])).id;
    userDataFileId = (
      await suite
        .client()
        .files.create({ file: await toFile(Buffer.from('x'), 'x.bin'), purpose: 'user_data' })
    ).id;
  });

  const create = (body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> =>
    send('POST', '/v1/batches', {
      headers: { ...bearer(suite.tenant().key), 'content-type': 'application/json', ...headers },
      body,
    });

  /** A valid body with `patch` applied (FILE stands for the suite's batch input file). */
  const body = (patch: Record<string, unknown> = {}): string =>
    JSON.stringify({
      input_file_id: inputFileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      ...patch,
    });

  /** A created batch must end: it is waited for here. */
  const settle = async (answer: Answer) => {
    if (answer.status !== 200) return;
    const batch = JSON.parse(answer.text) as { id: string };
    await waitForStatus(suite.client(), batch.id, ['completed', 'failed', 'expired', 'cancelled']);
  };

  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

  // [case, raw body, status, param, code]
  const bodies: [string, () => string, number, string | null | undefined, string | null | undefined][] = [
    ['a body that is not JSON', () => '{"input_file_id":', 400, null, 'invalid_json'],
    ['a JSON array', () => '[1,2,3]', 400, undefined, undefined],
    ['a JSON string (refused by the strict parser)', () => '"hello"', 400, null, 'invalid_json'],
    ['an empty object', () => '{}', 400, 'input_file_id', 'missing_required_parameter'],
    ['an empty body', () => '', 400, undefined, undefined],
    ['a body nested 100,000 levels deep', () => `{"x":${deep(100_000)}}`, 400, 'input_file_id', undefined],
    [
      'an endpoint nested 100,000 levels deep',
      () => body({ endpoint: 'X' }).replace('"X"', deep(100_000)),
      400,
      'endpoint',
      'invalid_value',
    ],
    [
      'a window nested 100,000 levels deep',
      () => body({ completion_window: 'X' }).replace('"X"', deep(100_000)),
      400,
      'completion_window',
      'invalid_value',
    ],
    [
      'a metadata value nested deeply',
      () => body({ metadata: { k: 'X' } }).replace('"X"', deep(100_000)),
      400,
      'metadata.k',
      'invalid_type',
    ],
    ['input_file_id as a number', () => body({ input_file_id: 7 }), 400, 'input_file_id', 'invalid_type'],
    [
      'input_file_id with a NUL',
      () => body({ input_file_id: 'file-\u0000' }),
      400,
      'input_file_id',
      'invalid_text',
    ],
    [
      'input_file_id with a lone surrogate',
      () => body({ input_file_id: 'file-\ud800' }),
      400,
      'input_file_id',
      'invalid_text',
    ],
    [
      'input_file_id 10,000 characters long',
      () => body({ input_file_id: 'f'.repeat(10_000) }),
      404,
      'input_file_id',
      undefined,
    ],
    [
      'input_file_id with a newline',
      () => body({ input_file_id: 'file-\nabc' }),
      404,
      'input_file_id',
      undefined,
    ],
    [
      'input_file_id unknown',
      () => body({ input_file_id: 'file-000000000000000000000000' }),
      404,
      'input_file_id',
      undefined,
    ],
    [
      'input_file_id of a user_data file',
      () => body({ input_file_id: userDataFileId }),
      400,
      'input_file_id',
      'invalid_value',
    ],
    [
      'endpoint with a NUL',
      () => body({ endpoint: '/v1/chat/completions\u0000' }),
      400,
      'endpoint',
      'invalid_text',
    ],
    ['endpoint with a lone surrogate', () => body({ endpoint: '\udfff' }), 400, 'endpoint', 'invalid_text'],
    [
      'endpoint unknown and 50 KB long',
      () => body({ endpoint: '/v1/'.repeat(12_500) }),
      400,
      'endpoint',
      'invalid_value',
    ],
    [
      'endpoint as an object',
      () => body({ endpoint: { url: '/v1/chat/completions' } }),
      400,
      'endpoint',
      'invalid_value',
    ],
    [
      'completion_window with a NUL',
      () => body({ completion_window: '24h\u0000' }),
      400,
      'completion_window',
      'invalid_text',
    ],
    [
      'completion_window as a number',
      () => body({ completion_window: 24 }),
      400,
      'completion_window',
      'invalid_value',
    ],
    [
      'completion_window unsupported',
      () => body({ completion_window: '1h' }),
      400,
      'completion_window',
      'invalid_value',
    ],
    [
      'a metadata key with a NUL',
      () => body({ metadata: { 'a\u0000': 'v' } }),
      400,
      'metadata',
      'invalid_text',
    ],
    [
      'a metadata value with a NUL',
      () => body({ metadata: { a: 'v\u0000' } }),
      400,
      'metadata.a',
      'invalid_text',
    ],
    [
      'a metadata key with a lone surrogate',
      () => body({ metadata: { '\ud800k': 'v' } }),
      400,
      'metadata',
      'invalid_text',
    ],
    [
      'a metadata value with a lone surrogate',
      () => body({ metadata: { a: 'x\udc00' } }),
      400,
      'metadata.a',
      'invalid_text',
    ],
    [
      'a metadata value that is a number',
      () => body({ metadata: { a: 1 } }),
      400,
      'metadata.a',
      'invalid_type',
    ],
    ['metadata as an array', () => body({ metadata: ['a'] }), 400, 'metadata', 'invalid_type'],
    [
      'metadata with 17 keys',
      () => body({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }),
      400,
      'metadata',
      'invalid_value',
    ],
    [
      'a metadata key of 65 characters',
      () => body({ metadata: { ['k'.repeat(65)]: 'v' } }),
      400,
      undefined,
      'invalid_value',
    ],
    [
      'a metadata value of 513 characters',
      () => body({ metadata: { k: 'v'.repeat(513) } }),
      400,
      'metadata.k',
      'invalid_value',
    ],
    [
      'an unknown barge_provider in metadata',
      () => body({ metadata: { barge_provider: 'nope' } }),
      400,
      'metadata.barge_provider',
      'invalid_value',
    ],
    [
      'output_expires_after with a bad anchor',
      () => body({ output_expires_after: { anchor: 'now', seconds: 3600 } }),
      400,
      'output_expires_after.anchor',
      'invalid_value',
    ],
    [
      'output_expires_after with seconds as a string',
      () => body({ output_expires_after: { anchor: 'created_at', seconds: '3600' } }),
      400,
      'output_expires_after.seconds',
      'invalid_value',
    ],
    [
      'a NUL inside an ignored field (accepted: bodies may hold any JSON)',
      () => body({ note: 'a\u0000b', extra: { deep: deep(50) } }),
      200,
      undefined,
      undefined,
    ],
    [
      'a metadata value with a paired surrogate (an emoji) is fine',
      () => body({ metadata: { mood: '\ud83d\ude00' } }),
      200,
      undefined,
      undefined,
    ],
  ];

  it.each(bodies)('%s', async (_name, make, status, param, code) => {
    const answer = await create(make());
    const parsed = expectAnswer(answer, {
      status,
      ...(param !== undefined && { param }),
      ...(code !== undefined && { code }),
    });
    if (status >= 400) expect((parsed.error as { message: string }).message.length).toBeLessThan(700);
    await settle(answer);
  });

  const encodings: [string, Record<string, string>, () => string, number][] = [
    ['a text/plain body', { 'content-type': 'text/plain' }, () => body(), 400],
    [
      'a form-encoded body',
      { 'content-type': 'application/x-www-form-urlencoded' },
      () => 'input_file_id=x',
      400,
    ],
    ['an unsupported charset', { 'content-type': 'application/json; charset=ebcdic' }, () => body(), 415],
    [
      'gzip that is not gzip',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      () => body(),
      400,
    ],
    [
      'an unknown content encoding',
      { 'content-type': 'application/json', 'content-encoding': 'zstd-evil' },
      () => body(),
      415,
    ],
    ['a body over 1 MB', {}, () => body({ pad: 'x'.repeat(1_100_000) }), 413],
    ['a gzip bomb (100 KB compressed, 100 MB inflated)', { 'content-encoding': 'gzip' }, () => 'BOMB', 413],
  ];

  it.each(encodings)('refuses %s', async (_name, headers, make, status) => {
    const raw = make();
    const payload = raw === 'BOMB' ? gzipSync(Buffer.alloc(100 * 1024 * 1024, ' ')) : raw;
    expectAnswer(await create(payload, headers), { status });
  });

  it.each([
    ['a provider header with Latin-1 bytes', { 'x-barge-provider': 'sim\u00e9' }, 400, 'x-barge-provider'],
    ['a provider header of 10 KB', { 'x-barge-provider': 'p'.repeat(10_000) }, 400, 'x-barge-provider'],
    ['an unknown provider', { 'x-barge-provider': 'nope' }, 400, 'x-barge-provider'],
    ['an Idempotency-Key of 256 characters', { 'idempotency-key': 'k'.repeat(256) }, 400, 'Idempotency-Key'],
    ['an Idempotency-Key of 8 KB', { 'idempotency-key': 'k'.repeat(8_000) }, 400, 'Idempotency-Key'],
  ])('refuses %s', async (_name, headers: Record<string, string>, status, param) => {
    expectAnswer(await create(body(), headers), { status, param });
  });

  it('accepts an Idempotency-Key of exactly 255 characters, and Latin-1 bytes in one', async () => {
    for (const key of ['k'.repeat(254) + 'x', `caf\u00e9-${Date.now()}`]) {
      const answer = await create(body(), { 'idempotency-key': key });
      expectAnswer(answer, { status: 200 });
      await settle(answer);
    }
  });

  it('replays the same request under the same key, and answers 409 for a different one', async () => {
    const key = `reuse-${Date.now()}`;
    const first = await create(body({ metadata: { a: '1', b: '2' } }), { 'idempotency-key': key });
    const created = expectAnswer(first, { status: 200 });
    // Same parameters in another order and spacing: the same request.
    const again = await create(
      JSON.stringify({
        metadata: { b: '2', a: '1' },
        completion_window: '24h',
        endpoint: '/v1/chat/completions',
        input_file_id: inputFileId,
      }),
      { 'idempotency-key': key },
    );
    expect(expectAnswer(again, { status: 200 }).id).toBe(created.id);

    for (const [different, headers] of [
      [body({ metadata: { a: '1', b: '3' } }), {}],
      [body({ metadata: { a: '1', b: '2' }, completion_window: '48h' }), {}],
      [body({ metadata: { a: '1', b: '2' } }), { 'x-barge-provider': 'simulator' }],
    ] as [string, Record<string, string>][]) {
      const conflict = await create(different, { 'idempotency-key': key, ...headers });
      expectAnswer(conflict, { status: 409, code: 'idempotency_key_reused', param: 'Idempotency-Key' });
      expect(conflict.headers['x-should-retry']).toBe('false');
    }
    await settle(first);
  });

  it('keys that differ only after 255 characters are different keys, not a collision', async () => {
    const stem = 'q'.repeat(250);
    const a = await create(body(), { 'idempotency-key': `${stem}aaaaa` });
    const b = await create(body({ metadata: { other: 'yes' } }), { 'idempotency-key': `${stem}aaaab` });
    expectAnswer(a, { status: 200 });
    expectAnswer(b, { status: 200 });
    expect(JSON.parse(b.text).id).not.toBe(JSON.parse(a.text).id);
    await Promise.all([settle(a), settle(b)]);
  });

  itStillServesNormalBatches(suite, { atLeast: 7 });
});
