import {
  expectEnvelope,
  expectRawAnswer,
  hostileSuite,
  itStillServesNormalBatches,
  rawExchange,
  RawResult,
} from './support';

/**
 * Hostile input: raw bytes over a socket, for what no HTTP client sends. Node's parser refuses
 * much of it before the application sees a request; those answers must carry the envelope too.
 * KEY in a case stands for the suite's API key.
 */
describe('hostile: raw HTTP', () => {
  const suite = hostileSuite('raw');

  type Expectation =
    /** The first response has this status (and code); every response follows the rules. */
    | { status: number; code?: string }
    /** At least one response, each following the rules. */
    | 'answered'
    /** The connection is closed; whatever was answered before follows the rules. */
    | 'closed';

  const req = (line: string, headers: string[] = [], body = '') =>
    `${line}\r\n${['Host: barge', ...headers].map((h) => `${h}\r\n`).join('')}\r\n${body}`;
  const auth = 'Authorization: Bearer KEY';
  /** A request with exactly `body` as its body (Content-Length from the bytes). */
  const withBody = (line: string, headers: string[], body: Buffer): (string | Buffer)[] => [
    req(line, [...headers, `Content-Length: ${body.length}`]),
    body,
  ];

  // [case, bytes to write (in parts), expectation]
  const cases: [string, (string | Buffer)[], Expectation][] = [
    // Seen: parser rejections answered with an empty body.
    [
      'a header value with a bare newline',
      [req('GET /v1/files HTTP/1.1', [auth, 'X-Evil: a\nb'])],
      { status: 400, code: 'invalid_http_request' },
    ],
    [
      'Transfer-Encoding together with Content-Length',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Content-Length: 4', 'Transfer-Encoding: chunked'],
          '0\r\n\r\n',
        ),
      ],
      { status: 400, code: 'invalid_http_request' },
    ],
    [
      'a Content-Length smaller than the body',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Content-Type: application/json', 'Content-Length: 2'],
          '{}GARBAGE-THAT-IS-NOT-A-REQUEST\r\n\r\n',
        ),
      ],
      'answered',
    ],
    [
      'a 100 KB URL',
      [req(`GET /v1/files?x=${'a'.repeat(100_000)} HTTP/1.1`, [auth])],
      { status: 431, code: 'request_header_fields_too_large' },
    ],
    // More of the same family.
    [
      'a NUL in a header value',
      [req('GET /v1/files HTTP/1.1', [auth, 'X-Evil: a\u0000b'])],
      { status: 400, code: 'invalid_http_request' },
    ],
    [
      'a space in a header name',
      [req('GET /v1/files HTTP/1.1', [auth, 'X Evil: a'])],
      { status: 400, code: 'invalid_http_request' },
    ],
    [
      'a 20 KB header',
      [req('GET /v1/files HTTP/1.1', [auth, `X-Big: ${'b'.repeat(20_000)}`])],
      { status: 431 },
    ],
    [
      '3,000 headers',
      [req('GET /v1/files HTTP/1.1', [auth, ...Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`)])],
      { status: 431 },
    ],
    [
      'two different Content-Lengths',
      [req('POST /v1/batches HTTP/1.1', [auth, 'Content-Length: 2', 'Content-Length: 3'], '{}')],
      { status: 400 },
    ],
    [
      'a Content-Length that is not a number',
      [req('POST /v1/batches HTTP/1.1', [auth, 'Content-Length: abc'], '{}')],
      { status: 400 },
    ],
    [
      'a negative Content-Length',
      [req('POST /v1/batches HTTP/1.1', [auth, 'Content-Length: -1'], '{}')],
      { status: 400 },
    ],
    [
      'a Transfer-Encoding that does not end in chunked',
      [req('POST /v1/batches HTTP/1.1', [auth, 'Transfer-Encoding: gzip'], '{}')],
      { status: 400 },
    ],
    [
      'a malformed chunk size',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Content-Type: application/json', 'Transfer-Encoding: chunked'],
          'zz\r\n{}\r\n0\r\n\r\n',
        ),
      ],
      { status: 400 },
    ],
    [
      'a huge chunk extension',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Transfer-Encoding: chunked'],
          `2;${'e'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`,
        ),
      ],
      'answered',
    ],
    [
      'obs-fold header continuation',
      [req('GET /v1/files HTTP/1.1', [auth, 'X-Folded: a', ' continued'])],
      'answered',
    ],
    [
      'garbage bytes',
      [Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10])],
      { status: 400, code: 'invalid_http_request' },
    ],
    [
      'a TLS ClientHello on the plain port',
      [Buffer.from('16030100a5010000a10303' + '00'.repeat(60), 'hex')],
      { status: 400 },
    ],
    ['the HTTP/2 preface', ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], { status: 400 }],
    ['an unknown method', [req('FOO /v1/files HTTP/1.1', [auth])], { status: 400 }],
    ['a lower-case method', [req('get /v1/files HTTP/1.1', [auth])], { status: 400 }],
    ['an HTTP version that does not exist', [req('GET /v1/files HTTP/1.9', [auth])], { status: 400 }],
    ['a path without a leading slash', [req('GET v1/files HTTP/1.1', [auth])], { status: 400 }],
    ['a raw space in the path', [req('GET /v1/fi les HTTP/1.1', [auth])], { status: 400 }],
    [
      'raw UTF-8 bytes in the path',
      [Buffer.from(req('GET /v1/files/é HTTP/1.1', [auth]), 'utf8')],
      { status: 400 },
    ],
    ['a line feed without carriage returns', ['GET /healthz HTTP/1.1\nHost: x\n\n'], { status: 400 }],
    [
      'CONNECT (this is not a proxy)',
      [req('CONNECT evil.example:443 HTTP/1.1', [auth])],
      { status: 405, code: 'method_not_allowed' },
    ],
    [
      'an Expect header other than 100-continue',
      [req('POST /v1/batches HTTP/1.1', [auth, 'Expect: the-unexpected', 'Content-Length: 2'], '{}')],
      { status: 417, code: 'expectation_failed' },
    ],
    // Accepted or refused by the application: still in the envelope.
    [
      'no Host header',
      ['GET /v1/files?limit=1 HTTP/1.1\r\nAuthorization: Bearer KEY\r\n\r\n'],
      { status: 200 },
    ],
    ['HTTP/1.0 without Host', ['GET /healthz HTTP/1.0\r\n\r\n'], { status: 200 }],
    ['an absolute-form URI', [req('GET http://evil.example/v1/files?limit=1 HTTP/1.1', [auth])], 'answered'],
    ['OPTIONS * without a key', [req('OPTIONS * HTTP/1.1')], { status: 401, code: 'invalid_api_key' }],
    [
      'an Upgrade to websocket',
      [
        req('GET /v1/files?limit=1 HTTP/1.1', [
          auth,
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        ]),
      ],
      { status: 200 },
    ],
    [
      'Expect: 100-continue',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Expect: 100-continue', 'Content-Type: application/json', 'Content-Length: 2'],
          '{}',
        ),
      ],
      { status: 100 },
    ],
    ['empty lines before the request line', ['\r\n\r\n' + req('GET /healthz HTTP/1.1')], { status: 200 }],
    [
      'obs-text bytes in a header value',
      [Buffer.from(req('GET /v1/files?limit=1 HTTP/1.1', [auth, 'X-Latin: caf\u00e9\u00ff']), 'latin1')],
      { status: 200 },
    ],
    [
      'a JSON body with an invalid UTF-8 sequence',
      withBody(
        'POST /v1/batches HTTP/1.1',
        [auth, 'Content-Type: application/json'],
        Buffer.from('{"a":"\xff\xfe"}', 'latin1'),
      ),
      { status: 400 },
    ],
    [
      'a JSON body in UTF-16',
      withBody(
        'POST /v1/batches HTTP/1.1',
        [auth, 'Content-Type: application/json; charset=utf-16'],
        Buffer.from('{"a":1}', 'utf16le'),
      ),
      // Decoded as UTF-16, then checked like any body: no input_file_id.
      { status: 400 },
    ],
    [
      'a Content-Length larger than the body, then the client stops sending',
      [
        req(
          'POST /v1/batches HTTP/1.1',
          [auth, 'Content-Type: application/json', 'Content-Length: 100'],
          '{"a":',
        ),
      ],
      'closed',
    ],
  ];

  // Concurrently: most cases wait out waitMs on a connection the server rightly keeps open.
  it.concurrent.each(cases)('%s', async (_name, parts, expected) => {
    const key = (await suite.ready()).key;
    // Byte parts are read as Latin-1, which maps every byte to one character and back.
    const bytes = parts.map((p) =>
      typeof p === 'string'
        ? p.replaceAll('KEY', key)
        : Buffer.from(p.toString('latin1').replaceAll('KEY', key), 'latin1'),
    );
    const closing = expected === 'closed';
    const result = await rawExchange(bytes, { waitMs: closing ? 1_500 : 3_000, endAfterWrite: closing });
    check(result, expected);
  });

  function check(result: RawResult, expected: Expectation): void {
    for (const res of result.responses) {
      expect(res.status).toBeLessThan(500);
      if (res.status >= 400) expectEnvelope(res.body, res.headers['content-type']);
    }
    if (expected === 'closed') {
      expect(result.closedByServer).toBe(true);
    } else if (expected === 'answered') {
      expect(result.responses.length).toBeGreaterThan(0);
    } else {
      expectRawAnswer(result, expected);
    }
  }

  it('answers 50 pipelined requests in one write, each on its own', async () => {
    const one = req('GET /healthz HTTP/1.1');
    const result = await rawExchange([one.repeat(49) + req('GET /healthz HTTP/1.1', ['Connection: close'])], {
      waitMs: 5_000,
    });
    expect(result.responses.map((r) => r.status)).toEqual(Array(50).fill(200));
  });

  it('answers a request sent one byte at a time', async () => {
    const bytes = req('GET /healthz HTTP/1.1', ['Connection: close']).split('');
    const result = await rawExchange(bytes, { gapMs: 2, waitMs: 3_000 });
    expectRawAnswer(result, { status: 200 });
  });

  it('closes the connection after a request the parser refused', async () => {
    const result = await rawExchange(
      [req('GET /v1/files HTTP/1.1', ['X-Evil: a\nb']), req('GET /healthz HTTP/1.1')],
      {
        waitMs: 3_000,
      },
    );
    expect(result.responses.map((r) => r.status)).toEqual([400]);
    expect(result.closedByServer).toBe(true);
  });

  itStillServesNormalBatches(suite);
});
