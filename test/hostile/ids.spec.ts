import { toFile } from 'openai';
import { createTenant, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, submitBatch, waitForStatus } from '../support/batches';
import { bearer, expectAnswer, hostileSuite, itStillServesNormalBatches, send } from './support';

/**
 * Hostile input: ids in the path. Whatever an id holds (NUL, surrogates, bad percent-encoding,
 * 5,000 characters, another tenant's id), the answer is the resource's own 404, exactly as
 * for an id that does not exist.
 */
describe('hostile: ids in the path', () => {
  const suite = hostileSuite('ids');
  let foreignFile: string;
  let foreignBatch: string;

  beforeAll(async () => {
    const other = openaiFor((await createTenant(uniqueTenant('hostile-ids-other'))).key, { maxRetries: 0 });
    const batch = await submitBatch(other, [chatLine('x')]);
    foreignFile = batch.input_file_id;
    foreignBatch = batch.id;
    await waitForStatus(other, batch.id, ['completed', 'failed']);
  });

  // Raw path segments, sent as they are. The router cannot percent-decode some of them: those
  // get a 404 too, naming the path's `id` (the router refuses them before any controller).
  const UNDECODABLE = ['%ED%A0%80', '%FF%FE', 'file-%E2%82', 'file-%'];
  const ids: [string, string][] = [
    ['a NUL (%00)', '%00'],
    ['a NUL inside a plausible id', 'file-abc%00def'],
    ['an encoded lone surrogate', '%ED%A0%80'],
    ['invalid UTF-8', '%FF%FE'],
    ['a truncated UTF-8 sequence', 'file-%E2%82'],
    ['a lone percent sign', 'file-%'],
    ['5,000 characters', 'f'.repeat(5000)],
    ['an encoded path traversal', '..%2F..%2Fetc%2Fpasswd'],
    ['SQL', "file-'%20OR%20'1'='1"],
    ['a newline', 'file-%0Aabc'],
    ['an emoji', '%F0%9F%92%A9'],
    ['a plausible unknown id', 'file-000000000000000000000000'],
    ['another tenant’s id', 'FOREIGN'],
  ];

  const routes: [string, string, (id: string) => string, 'file' | 'batch'][] = [
    ['retrieve file', 'GET', (id) => `/v1/files/${id}`, 'file'],
    ['file content', 'GET', (id) => `/v1/files/${id}/content`, 'file'],
    [
      'file cost estimate',
      'GET',
      (id) => `/v1/files/${id}/cost_estimate?endpoint=/v1/chat/completions`,
      'file',
    ],
    ['delete file', 'DELETE', (id) => `/v1/files/${id}`, 'file'],
    ['retrieve batch', 'GET', (id) => `/v1/batches/${id}`, 'batch'],
    ['cancel batch', 'POST', (id) => `/v1/batches/${id}/cancel`, 'batch'],
  ];

  const cases = routes.flatMap(([route, method, path, kind]) =>
    ids.map(([name, id]) => [`${route}: ${name}`, method, path, kind, id] as const),
  );

  it('has a case for every id on every route', () => {
    expect(cases).toHaveLength(ids.length * routes.length);
  });

  it.each(cases)('%s answers 404 like an unknown id', async (_name, method, path, kind, rawId) => {
    const id = rawId === 'FOREIGN' ? (kind === 'file' ? foreignFile : foreignBatch) : rawId;
    const answer = await send(method, path(id), { headers: bearer(suite.tenant().key) });
    const body = expectAnswer(answer, {
      status: 404,
      param: kind === 'file' || UNDECODABLE.includes(rawId) ? 'id' : 'batch_id',
      type: 'invalid_request_error',
    });
    const message = (body.error as { message: string }).message;
    expect(message.length).toBeLessThan(400);
    // The same words as for an id that does not exist (undecodable ones cannot be echoed).
    expect(message).toMatch(kind === 'file' ? /^No such (File )?object/ : /^No such (Batch )?object/);
  });

  it('still serves its own ids (the checks above refuse only what cannot exist)', async () => {
    const client = suite.client();
    const file = await client.files.create({
      file: await toFile(Buffer.from('{"a":1}\n'), 'mine.jsonl'),
      purpose: 'batch',
    });
    expectAnswer(await send('GET', `/v1/files/${file.id}`, { headers: bearer(suite.tenant().key) }), {
      status: 200,
    });
  });

  itStillServesNormalBatches(suite);
});
