import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { downloadLines, OutputLine, waitForStatus } from '../support/batches';
import { hostileSuite, itStillServesNormalBatches } from './support';

const CHAT = '/v1/chat/completions';

/** A chat request line as JSON text, with `patch` over its top level and `body` over its body. */
function chat(
  customId: string,
  body: Record<string, unknown> = {},
  patch: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: CHAT,
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${customId}` }], ...body },
    ...patch,
  });
}

/** JSON text of arrays nested `n` deep. */
const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

/** A line whose whole depth (the line object is level 1, its body level 2) is `depth`. */
const lineOfDepth = (id: string, depth: number) => chat(id, { extra: 'X' }).replace('"X"', nested(depth - 2));

interface Failed {
  status: 'failed';
  /** The first error expected, and on which line. */
  code: string;
  line: number | null;
  param?: string | null;
}
interface Completed {
  status: 'completed';
  completed: number;
  failed: number;
}

interface Case {
  name: string;
  text: () => string | Buffer;
  expect: Failed | Completed;
  endpoint?: string;
  /** Checks on the output lines of a completed batch. */
  output?: (lines: OutputLine[]) => void;
}

const good = (i: number) => chat(`good-${i}`);
const file = (...lines: string[]) => lines.join('\n') + '\n';
const failed = (code: string, line: number | null, param?: string | null): Failed => ({
  status: 'failed',
  code,
  line,
  param,
});
const completed = (n: number, failedCount = 0): Completed => ({
  status: 'completed',
  completed: n - failedCount,
  failed: failedCount,
});

/**
 * Hostile input: the lines of a batch file. A line that would break a later stage (text
 * Postgres cannot store in a stored field, nesting that recursion cannot survive, a model name
 * built to make the matcher backtrack) is refused at validation with a documented code; what
 * is merely unusual (a NUL inside a prompt, a BOM) is carried through. No batch may stay
 * non-terminal, and every error message is bounded.
 */
describe('hostile: JSONL contents', () => {
  const suite = hostileSuite('jsonl');

  const cases: Case[] = [
    // Text Postgres cannot store, in the fields that get stored: each used to wedge a batch.
    {
      name: 'a NUL in method',
      text: () => file(good(1), chat('x', {}, { method: 'PO\u0000ST' })),
      expect: failed('invalid_text', 2, 'method'),
    },
    {
      name: 'a lone surrogate in a mismatched url',
      text: () => file(good(1), chat('x', {}, { url: '/v1/x\ud800' })),
      expect: failed('invalid_text', 2, 'url'),
    },
    {
      name: 'a NUL in custom_id',
      text: () => file(good(1), chat('x\u0000y')),
      expect: failed('invalid_text', 2, 'custom_id'),
    },
    {
      name: 'a lone surrogate in custom_id',
      text: () => file(good(1), chat('\udc00')),
      expect: failed('invalid_text', 2, 'custom_id'),
    },
    {
      name: 'a NUL in model',
      text: () => file(good(1), chat('x', { model: 'gpt\u0000' })),
      expect: failed('invalid_text', 2, 'body.model'),
    },
    {
      name: 'a lone surrogate in model',
      text: () => file(chat('x', { model: 'gpt-\ud800' })),
      expect: failed('invalid_text', 1, 'body.model'),
    },
    // Limits of one line.
    {
      name: 'a model of 257 characters',
      text: () => file(chat('x', { model: 'm'.repeat(257) })),
      expect: failed('model_too_long', 1, 'body.model'),
    },
    {
      name: 'a crafted 100,000-character model name',
      text: () => file(chat('x', { model: `${'a-'.repeat(50_000)}!` })),
      expect: failed('model_too_long', 1, 'body.model'),
    },
    {
      name: 'a body nested 10,000 levels deep',
      text: () => file(good(1), lineOfDepth('deep', 10_000)),
      expect: failed('too_deeply_nested', 2, null),
    },
    {
      name: 'a body nested 65 levels deep',
      text: () => file(good(1), lineOfDepth('deep', 65)),
      expect: failed('too_deeply_nested', 2, null),
    },
    {
      name: 'a line exactly 64 levels deep (the limit)',
      text: () => file(lineOfDepth('deep64', 64)),
      expect: completed(1),
    },
    {
      name: 'brackets inside a string (not nesting)',
      text: () => file(chat('s', { messages: [{ role: 'user', content: nested(50_000) }] })),
      expect: completed(1),
    },
    {
      name: 'a line over 64 MiB',
      text: () =>
        file(
          good(1),
          chat('huge', { messages: [{ role: 'user', content: 'x'.repeat(64 * 1024 * 1024 + 10) }] }),
        ),
      expect: failed('line_too_large', 2, null),
    },
    // Legitimate content that must be carried through, not refused.
    {
      name: 'a NUL inside a prompt',
      text: () => file(chat('nul', { messages: [{ role: 'user', content: 'a\u0000b' }] })),
      expect: completed(1),
    },
    {
      name: 'a lone surrogate inside a prompt',
      text: () => file(chat('sur', { messages: [{ role: 'user', content: 'a\ud800b' }] })),
      expect: completed(1),
    },
    {
      name: 'a NUL in a prompt echoed back in the answer',
      endpoint: '/v1/completions',
      text: () =>
        file(
          JSON.stringify({
            custom_id: 'echo',
            method: 'POST',
            url: '/v1/completions',
            body: { model: 'gpt-3.5-turbo-instruct', prompt: 'zero\u0000byte', echo: true, max_tokens: 5 },
          }),
        ),
      expect: completed(1),
      output: (lines) => {
        const choices = (lines[0].response!.body as { choices: { text: string }[] }).choices;
        expect(choices[0].text.startsWith('zero\u0000byte')).toBe(true);
      },
    },
    {
      name: 'a BOM before the first line',
      text: () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(file(good(1), good(2)))]),
      expect: completed(2),
    },
    {
      name: 'a BOM before the second line',
      text: () => file(good(1), `\ufeff${good(2)}`),
      expect: failed('invalid_json_line', 2, null),
    },
    { name: 'CRLF line ends', text: () => [good(1), good(2), ''].join('\r\n'), expect: completed(2) },
    {
      name: 'blank and whitespace-only lines',
      text: () => file('', good(1), '   ', '\t', good(2), ''),
      expect: completed(2),
    },
    { name: 'leading whitespace before a line', text: () => file(`   \t${good(1)}`), expect: completed(1) },
    { name: 'no newline at the end', text: () => good(1), expect: completed(1) },
    {
      name: 'Unicode line separators in custom_id',
      text: () => file(chat('a\u2028b\u2029c')),
      expect: completed(1),
    },
    {
      name: 'quotes, backslashes and escapes in custom_id',
      text: () => file(chat('a"b\\c\n\t')),
      expect: completed(1),
    },
    {
      name: 'duplicate keys in a line (the last wins)',
      text: () => file(good(1).replace('{"custom_id":"good-1"', '{"custom_id":"first","custom_id":"good-1"')),
      expect: completed(1),
    },
    {
      name: 'numbers beyond double range in the body',
      text: () => file(chat('big').replace('"model"', '"x_big":1e400,"x_small":-1e400,"model"')),
      expect: completed(1),
    },
    {
      name: 'a __proto__ key in the body',
      text: () => file(chat('proto').replace('"model"', '"__proto__":{"polluted":true},"model"')),
      expect: completed(1),
    },
    {
      name: 'an emoji model name',
      text: () => file(chat('emoji', { model: 'gpt-\ud83d\ude80' })),
      expect: completed(1),
    },
    {
      name: 'a 2 MB prompt',
      text: () => file(chat('long', { messages: [{ role: 'user', content: 'word '.repeat(400_000) }] })),
      expect: completed(1),
    },
    // Plain rule breaking, with bounded messages.
    {
      name: 'a JSON array line',
      text: () => file(good(1), '[1,2,3]'),
      expect: failed('invalid_json_line', 2, null),
    },
    { name: 'a null line', text: () => file(good(1), 'null'), expect: failed('invalid_json_line', 2, null) },
    {
      name: 'garbage after the object',
      text: () => file(good(1), `${good(2)} trailing`),
      expect: failed('invalid_json_line', 2, null),
    },
    {
      name: 'an empty object',
      text: () => file(good(1), '{}'),
      expect: failed('missing_required_parameter', 2, 'custom_id'),
    },
    {
      name: 'a duplicate custom_id',
      text: () => file(good(1), good(1)),
      expect: failed('duplicate_custom_id', 2, 'custom_id'),
    },
    {
      name: 'a custom_id of 513 characters',
      text: () => file(chat('c'.repeat(513))),
      expect: failed('invalid_request', 1, 'custom_id'),
    },
    {
      name: 'custom_id as an object',
      text: () => file(good(1), chat('x', {}, { custom_id: { a: 1 } })),
      expect: failed('invalid_request', 2, 'custom_id'),
    },
    {
      name: 'method nested 50 levels deep',
      text: () => file(good(1), chat('x').replace('"method":"POST"', `"method":${nested(50)}`)),
      expect: failed('invalid_method', 2, 'method'),
    },
    {
      name: 'method in lower case',
      text: () => file(good(1), chat('x', {}, { method: 'post' })),
      expect: failed('invalid_method', 2, 'method'),
    },
    {
      name: 'a 100,000-character url',
      text: () => file(good(1), chat('x', {}, { url: `/v1/${'u'.repeat(100_000)}` })),
      expect: failed('invalid_url', 2, 'url'),
    },
    {
      name: 'the url with a trailing space',
      text: () => file(good(1), chat('x', {}, { url: `${CHAT} ` })),
      expect: failed('invalid_url', 2, 'url'),
    },
    {
      name: 'stream: true',
      text: () => file(chat('x', { stream: true })),
      expect: failed('streaming_unsupported', 1, 'body.stream'),
    },
    {
      name: 'a body that is an array',
      text: () => file(good(1), chat('x', {}, { body: [1] })),
      expect: failed('invalid_request', 2, 'body'),
    },
    {
      name: 'no body',
      text: () => file(good(1), chat('x', {}, { body: null })),
      expect: failed('missing_required_parameter', 2, 'body'),
    },
    {
      name: 'a model that is a number',
      text: () => file(chat('x', { model: 4 })),
      expect: failed('invalid_request', 1, 'body.model'),
    },
    {
      name: 'two models in one file',
      text: () => file(good(1), chat('x', { model: 'other-model' })),
      expect: failed('mismatched_model', 2, 'body.model'),
    },
    {
      name: '1,000 bad lines with 10 KB urls (errors capped and bounded)',
      text: () =>
        file(
          good(1),
          ...Array.from({ length: 1000 }, (_, i) =>
            chat(`bad-${i}`, {}, { url: `/v1/${'z'.repeat(10_000)}` }),
          ),
        ),
      expect: failed('invalid_url', 2, 'url'),
    },
    // An upstream that refuses one request: that request's error line, the batch completes.
    {
      name: 'a request the upstream refuses',
      text: () => file(good(1), chat('refused', { simulate: { fail_times: 1_000_000, fail_status: 400 } })),
      expect: completed(2, 1),
    },
  ];

  it('has its cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  /** Uploads the case's file, creates its batch and waits until it ends. */
  async function run(client: OpenAI, c: Case): Promise<Batch> {
    const upload = await client.files.create({
      file: await toFile(Buffer.from(c.text()), 'hostile.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: upload.id,
      endpoint: (c.endpoint ?? CHAT) as OpenAI.Batches.BatchCreateParams['endpoint'],
      completion_window: '24h',
    });
    return waitForStatus(client, batch.id, ['completed', 'failed', 'expired', 'cancelled'], 150_000);
  }

  // Batches run side by side (a few at a time) so the suite stays quick; each case checks its own.
  const results = new Map<string, Promise<Batch>>();
  beforeAll(() => {
    const client = suite.client();
    let next = 0;
    const pending = cases.map(() => {
      let settle!: { resolve: (b: Batch) => void; reject: (e: unknown) => void };
      const promise = new Promise<Batch>((resolve, reject) => (settle = { resolve, reject }));
      promise.catch(() => undefined); // awaited by its case
      return { promise, settle };
    });
    cases.forEach((c, i) => results.set(c.name, pending[i].promise));
    const worker = async () => {
      while (next < cases.length) {
        const i = next++;
        await run(client, cases[i]).then(pending[i].settle.resolve, pending[i].settle.reject);
      }
    };
    // Four at a time: under the per-tenant upload cap, and gentle on a 2-core machine.
    for (let w = 0; w < 4; w++) void worker();
  });

  it.each(cases.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, c) => {
      const batch = await results.get(c.name)!;
      expect(batch.status).toBe(c.expect.status);
      if (c.expect.status === 'failed') {
        const errors = batch.errors?.data ?? [];
        expect(errors.length).toBeGreaterThan(0);
        const { code, line, param } = c.expect;
        expect(errors[0]).toMatchObject({ code, line, ...(param !== undefined && { param }) });
        // Bounded: every message short, the whole list small, however large the lines were.
        for (const e of errors) expect(e.message!.length).toBeLessThan(700);
        expect(errors.length).toBeLessThanOrEqual(101);
        expect(JSON.stringify(batch.errors).length).toBeLessThan(100_000);
      } else {
        expect(batch.request_counts).toMatchObject({
          completed: c.expect.completed,
          failed: c.expect.failed,
        });
        if (c.output) {
          const lines = await downloadLines(suite.client(), batch.output_file_id);
          expect(lines.length).toBe(c.expect.completed);
          c.output(lines);
        }
      }
    },
    180_000,
  );

  itStillServesNormalBatches(suite, cases.length);
});
