import { Readable } from 'node:stream';
import OpenAI, { toFile } from 'openai';
import { FileStore } from '../../src/files/file-store';
import { MinioStorage } from '../../src/storage/minio-storage';
import { createTenant, openaiFor, TestTenant, uniqueTenant, withTestDb } from '../support/api';
import { apiUrl, stackConfig } from '../support/stack';

const jsonl = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/x', body: {} }),
  )
    .join('\n')
    .concat('\n');

/** The Files API through the official SDK, against the test stack's API. */
describe('Files API', () => {
  const config = stackConfig();
  const storage = new MinioStorage(config.storage);
  let alice: TestTenant;
  let bob: TestTenant;
  let client: OpenAI;
  let bobClient: OpenAI;

  beforeAll(async () => {
    [alice, bob] = await Promise.all([
      createTenant(uniqueTenant('files-a')),
      createTenant(uniqueTenant('files-b')),
    ]);
    client = openaiFor(alice.key, { maxRetries: 0 });
    bobClient = openaiFor(bob.key, { maxRetries: 0 });
  });

  it('creates, retrieves, downloads and deletes a batch file', async () => {
    const text = jsonl(3);
    const file = await client.files.create({
      file: await toFile(Buffer.from(text), 'input.jsonl'),
      purpose: 'batch',
    });
    expect(file).toEqual({
      id: expect.stringMatching(/^file-[0-9A-Za-z]{24}$/),
      object: 'file',
      bytes: Buffer.byteLength(text),
      created_at: expect.any(Number),
      expires_at: file.created_at + config.limits.batchFileTtlSeconds,
      filename: 'input.jsonl',
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    });
    expect(Math.abs(file.created_at - Date.now() / 1000)).toBeLessThan(60);
    expect(await client.files.retrieve(file.id)).toEqual(file);

    const content = await client.files.content(file.id);
    expect(content.headers.get('content-type')).toBe('application/jsonl');
    expect(content.headers.get('content-length')).toBe(String(file.bytes));
    expect(content.headers.get('accept-ranges')).toBe('bytes');
    expect(await content.text()).toBe(text);

    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    const err = await client.files.retrieve(file.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      message: `No such File object: ${file.id}`,
      type: 'invalid_request_error',
      param: 'id',
      code: null,
    });
    await expect(client.files.delete(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.files.content(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // No active batch reads it, so its bytes went with it.
    const [row] = await withTestDb((db) => db.query(`SELECT object_key FROM files WHERE id = $1`, [file.id]));
    expect(await storage.size(row.object_key)).toBeNull();
  });

  it('serves byte ranges, so interrupted downloads resume', async () => {
    const text = 'The quick brown fox jumps over the lazy dog.\n'.repeat(1000);
    const file = await client.files.create({
      file: await toFile(Buffer.from(text), 'notes.txt'),
      purpose: 'user_data',
    });
    const url = `${apiUrl()}/v1/files/${file.id}/content`;
    const get = (headers: Record<string, string> = {}) =>
      fetch(url, { headers: { authorization: `Bearer ${alice.key}`, ...headers } });

    const head = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${alice.key}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(text.length));
    expect(head.headers.get('accept-ranges')).toBe('bytes');

    const whole = await get();
    expect(whole.headers.get('content-type')).toBe('application/octet-stream');
    const received = Buffer.from(await whole.arrayBuffer()).subarray(0, 10_000); // "cut off" at 10,000

    const rest = await get({ range: `bytes=${received.length}-` });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes 10000-${text.length - 1}/${text.length}`);
    expect(rest.headers.get('content-length')).toBe(String(text.length - 10_000));
    const resumed = Buffer.concat([received, Buffer.from(await rest.arrayBuffer())]);
    expect(resumed.toString()).toBe(text);

    const middle = await get({ range: 'bytes=4-8' });
    expect(middle.status).toBe(206);
    expect(await middle.text()).toBe('quick');
    const tail = await get({ range: 'bytes=-5' });
    expect(await tail.text()).toBe('dog.\n');

    const beyond = await get({ range: `bytes=${text.length}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${text.length}`);
    expect(await beyond.json()).toMatchObject({ error: { code: 'range_not_satisfiable', param: 'range' } });

    // A resume against a different version (If-Range mismatch) gets the whole file.
    const stale = await get({ range: 'bytes=4-8', 'if-range': '"something-else"' });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(text.length);
    const fresh = await get({ range: 'bytes=4-8', 'if-range': whole.headers.get('etag')! });
    expect(fresh.status).toBe(206);
    expect(await fresh.text()).toBe('quick');
  });

  it('lists newest first across pages, in either order, filtered by purpose, always with has_more', async () => {
    const tenant = await createTenant(uniqueTenant('files-list'));
    const c = openaiFor(tenant.key, { maxRetries: 0 });
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const purpose = i % 2 === 0 ? 'batch' : 'user_data';
      const file = await c.files.create({
        file: await toFile(Buffer.from(jsonl(1)), `f${i}.jsonl`),
        purpose,
      });
      created.push(file.id);
    }

    const first = await c.files.list({ limit: 3 });
    expect(first.data.map((f) => f.id)).toEqual(created.slice(-3).reverse());
    const raw = await (
      await fetch(`${apiUrl()}/v1/files?limit=3`, { headers: { authorization: `Bearer ${tenant.key}` } })
    ).json();
    expect(raw).toMatchObject({ object: 'list', first_id: created[6], last_id: created[4], has_more: true });

    const all: string[] = [];
    for await (const file of c.files.list({ limit: 2 })) all.push(file.id);
    expect(all).toEqual([...created].reverse());

    const asc: string[] = [];
    for await (const file of c.files.list({ limit: 3, order: 'asc' })) asc.push(file.id);
    expect(asc).toEqual(created);

    const batchOnly: string[] = [];
    for await (const file of c.files.list({ purpose: 'batch', limit: 2 })) batchOnly.push(file.id);
    expect(batchOnly).toEqual(created.filter((_, i) => i % 2 === 0).reverse());

    const last = await (
      await fetch(`${apiUrl()}/v1/files?limit=100`, { headers: { authorization: `Bearer ${tenant.key}` } })
    ).json();
    expect(last).toMatchObject({ has_more: false, first_id: created[6], last_id: created[0] });

    // Deleting the item a client paged to does not break its next page.
    await c.files.delete(created[3]);
    const after = await c.files.list({ after: created[3], limit: 10 });
    expect(after.data.map((f) => f.id)).toEqual(created.slice(0, 3).reverse());

    const empty = openaiFor((await createTenant(uniqueTenant('files-empty'))).key, { maxRetries: 0 });
    expect(await empty.files.list()).toMatchObject({ data: [], has_more: false });
  });

  it('refuses bad list parameters', async () => {
    const list = (query: string) =>
      fetch(`${apiUrl()}/v1/files?${query}`, { headers: { authorization: `Bearer ${alice.key}` } });
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['limit=ten', 'limit'],
      ['order=newest', 'order'],
      ['after=file-doesnotexist', 'after'],
    ]) {
      const res = await list(query);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(await res.json()).toMatchObject({ error: { param } });
    }
  });

  it('keeps tenants apart: another tenant’s file answers exactly like a missing one', async () => {
    const mine = await client.files.create({
      file: await toFile(Buffer.from(jsonl(1)), 'mine.jsonl'),
      purpose: 'batch',
    });
    const missing = 'file-000000000000000000000000';
    const answers = async (id: string) => {
      const out: unknown[] = [];
      for (const call of [
        () => bobClient.files.retrieve(id),
        () => bobClient.files.content(id),
        () => bobClient.files.delete(id),
      ]) {
        const err = (await call().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.NotFoundError>;
        expect(err).toBeInstanceOf(OpenAI.NotFoundError);
        out.push(err.error);
      }
      return JSON.stringify(out).replaceAll(id, '<id>');
    };
    expect(await answers(mine.id)).toBe(await answers(missing));

    const bobsOwn = await bobClient.files.create({
      file: await toFile(Buffer.from(jsonl(1)), 'bobs.jsonl'),
      purpose: 'batch',
    });
    const bobs: string[] = [];
    for await (const f of bobClient.files.list()) bobs.push(f.id);
    // Bob's list works and has his file, and only his.
    expect(bobs).toEqual([bobsOwn.id]);
    // Nor can bob use alice's id as a cursor.
    await expect(bobClient.files.list({ after: mine.id })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    // And alice still has it.
    expect((await client.files.retrieve(mine.id)).id).toBe(mine.id);
  });

  it('sanitises file names', async () => {
    // Hand-written, to send what a browser's FormData would refuse to: an RFC 5987 name with
    // path parts, control and bidi-override characters.
    const boundary = 'sanitise-boundary';
    const body = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="purpose"',
      '',
      'user_data',
      `--${boundary}`,
      `Content-Disposition: form-data; name="file"; filename*=UTF-8''..%2F..%2Fetc%2F%07pass%E2%80%AEwd%0D%0A`,
      '',
      'x',
      `--${boundary}--`,
      '',
    ].join('\r\n');
    const res = await fetch(`${apiUrl()}/v1/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice.key}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ filename: 'passwd', bytes: 1 });

    const long = await client.files.create({
      file: await toFile(Buffer.from(jsonl(1)), `${'a'.repeat(300)}.jsonl`),
      purpose: 'batch',
    });
    expect(long.filename).toHaveLength(255);
    expect(long.filename.endsWith('.jsonl')).toBe(true);
  });

  it('honours expires_after, and the purge removes expired files and their objects', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from('temporary'), 'tmp.bin'),
      purpose: 'user_data',
      expires_after: { anchor: 'created_at', seconds: 3600 },
    });
    expect(file.expires_at).toBe(file.created_at + 3600);
    const batchFile = await client.files.create({
      file: await toFile(Buffer.from(jsonl(1)), 'b.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: 7200 },
    });
    expect(batchFile.expires_at).toBe(batchFile.created_at + 7200);

    const key = `files/${alice.tenantId}/${file.id}`;
    expect(await storage.size(key)).toBe(9);
    const report = await withTestDb((db) =>
      new FileStore(db, storage, config).purgeExpired(new Date(Date.now() + 3601_000)),
    );
    expect(report.expired).toBeGreaterThanOrEqual(1);
    expect(await storage.size(key)).toBeNull();
    await expect(client.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // Not yet due.
    expect((await client.files.retrieve(batchFile.id)).id).toBe(batchFile.id);

    // Other purposes never expire unless asked to.
    const kept = await client.files.create({
      file: await toFile(Buffer.from('x'), 'x.bin'),
      purpose: 'user_data',
    });
    expect(kept.expires_at).toBeNull();
  });

  it('keeps a deleted file’s bytes while an active batch reads it, and purges them after', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl(2)), 'in.jsonl'),
      purpose: 'batch',
    });
    const key = `files/${alice.tenantId}/${file.id}`;
    const batchId = `batch_test_${file.id}`;
    await withTestDb((db) =>
      db.query(
        `INSERT INTO batches (id, tenant_id, endpoint, input_file_id, completion_window, status, created_at, expires_at)
         VALUES ($1, $2, '/v1/chat/completions', $3, '24h', 'in_progress', now(), now() + interval '1 day')`,
        [batchId, alice.tenantId, file.id],
      ),
    );
    try {
      expect(await client.files.delete(file.id)).toMatchObject({ deleted: true });
      await expect(client.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      expect(await storage.size(key)).toBeGreaterThan(0);

      await withTestDb(async (db) => {
        const store = new FileStore(db, storage, config);
        // The worker can still read it.
        expect((await store.get(alice.tenantId, file.id, { includeDeleted: true })).id).toBe(file.id);
        await store.purgeExpired();
        expect(await storage.size(key)).toBeGreaterThan(0);

        await db.query(`UPDATE batches SET status = 'completed' WHERE id = $1`, [batchId]);
        await store.purgeExpired();
        expect(await storage.size(key)).toBeNull();
        await expect(store.get(alice.tenantId, file.id, { includeDeleted: true })).rejects.toMatchObject({
          status: 404,
        });
      });
    } finally {
      await withTestDb((db) => db.query(`DELETE FROM batches WHERE id = $1`, [batchId]));
    }
  });

  it('sweeps objects that no file row claims, once they are an hour old', async () => {
    const kept = await client.files.create({
      file: await toFile(Buffer.from('keep'), 'k.bin'),
      purpose: 'user_data',
    });
    const orphan = `files/${alice.tenantId}/file-orphan${Date.now()}`;
    await storage.putStream(orphan, Readable.from(['left behind by a crash']));
    await withTestDb(async (db) => {
      const store = new FileStore(db, storage, config);
      await store.sweepOrphans(new Date());
      expect(await storage.size(orphan)).not.toBeNull(); // too young to judge
      expect(await store.sweepOrphans(new Date(Date.now() + 3601_000))).toBeGreaterThanOrEqual(1);
    });
    expect(await storage.size(orphan)).toBeNull();
    expect(await storage.size(`files/${alice.tenantId}/${kept.id}`)).toBe(4);
  });

  it('lets the system write batch_output files, which list like any file', async () => {
    const record = await withTestDb((db) =>
      new FileStore(db, storage, config).create({
        tenantId: alice.tenantId,
        filename: 'batch_x_output.jsonl',
        purpose: 'batch_output',
        source: (async function* () {
          yield '{"id":"a"}\n';
          yield Buffer.from('{"id":"b"}\n');
        })(),
      }),
    );
    const file = await client.files.retrieve(record.id);
    expect(file).toMatchObject({ purpose: 'batch_output', bytes: 22, expires_at: null });
    expect(await (await client.files.content(record.id)).text()).toBe('{"id":"a"}\n{"id":"b"}\n');
    const outputs: string[] = [];
    for await (const f of client.files.list({ purpose: 'batch_output' })) outputs.push(f.id);
    expect(outputs).toContain(record.id);
  });
});
