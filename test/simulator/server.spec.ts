import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { credentialTag } from '../../src/simulator/stats';
import { call, chat, type Reply } from './http-client';

describe('simulator server', () => {
  let sim: SimulatorHandle;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0 });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.reset());

  describe('endpoints', () => {
    it('answers chat completions in OpenAI shape with usage', async () => {
      const reply = await call(sim, 'POST', '/v1/chat/completions', chat('What is the capital of France?'));
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(reply.headers['x-request-id']).toMatch(/^req_[0-9a-f]+$/);
      const body = reply.json;
      expect(body).toMatchObject({ object: 'chat.completion', model: 'gpt-4o-mini' });
      expect(body.id).toMatch(/^chatcmpl-/);
      expect(typeof body.created).toBe('number');
      expect(body.choices).toHaveLength(1);
      expect(body.choices[0]).toMatchObject({
        index: 0,
        finish_reason: 'stop',
        message: { role: 'assistant' },
      });
      const content: string = body.choices[0].message.content;
      expect(content).toContain('Simulated answer to: "What is the capital of France?"');
      // ~4 characters per token: system and user text together.
      const promptChars = 'You are terse.'.length + 'What is the capital of France?'.length;
      expect(body.usage).toMatchObject({
        prompt_tokens: Math.ceil(promptChars / 4),
        completion_tokens: Math.ceil(content.length / 4),
        total_tokens: Math.ceil(promptChars / 4) + Math.ceil(content.length / 4),
      });
    });

    it('honours n and max_tokens on chat completions', async () => {
      const reply = await call(
        sim,
        'POST',
        '/v1/chat/completions',
        chat('Tell me a story', { n: 3, max_tokens: 5 }),
      );
      expect(reply.json.choices.map((c: { index: number }) => c.index)).toEqual([0, 1, 2]);
      for (const choice of reply.json.choices) {
        expect(choice.finish_reason).toBe('length');
        expect(choice.message.content.length).toBeLessThanOrEqual(20);
      }
      expect(reply.json.usage.completion_tokens).toBe(15);
    });

    it('answers legacy completions, one choice per prompt', async () => {
      const reply = await call(sim, 'POST', '/v1/completions', {
        model: 'gpt-3.5-turbo-instruct',
        prompt: ['Once upon a time', 'The quick brown fox'],
        max_tokens: 100,
      });
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ object: 'text_completion', model: 'gpt-3.5-turbo-instruct' });
      expect(reply.json.id).toMatch(/^cmpl-/);
      expect(reply.json.choices).toHaveLength(2);
      expect(reply.json.choices[1]).toMatchObject({ index: 1, logprobs: null, finish_reason: 'stop' });
      expect(reply.json.choices[1].text).toContain('The quick brown fox');
      const { prompt_tokens, completion_tokens, total_tokens } = reply.json.usage;
      expect(prompt_tokens).toBe(Math.ceil(16 / 4) + Math.ceil(19 / 4));
      expect(total_tokens).toBe(prompt_tokens + completion_tokens);
    });

    it('returns deterministic unit embeddings, 64 dimensions unless asked', async () => {
      const body = { model: 'text-embedding-3-small', input: ['alpha', 'beta'] };
      const first = await call(sim, 'POST', '/v1/embeddings', body);
      const second = await call(sim, 'POST', '/v1/embeddings', body);
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ object: 'list', model: 'text-embedding-3-small' });
      // Each input is counted on its own: ceil(5 / 4) + ceil(4 / 4).
      expect(first.json.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
      const [a, b] = first.json.data as { object: string; index: number; embedding: number[] }[];
      expect([a.object, a.index, b.index]).toEqual(['embedding', 0, 1]);
      expect(a.embedding).toHaveLength(64);
      expect(Math.hypot(...a.embedding)).toBeCloseTo(1, 5);
      expect(a.embedding).not.toEqual(b.embedding);
      expect(second.json.data).toEqual(first.json.data);

      const single = await call(sim, 'POST', '/v1/embeddings', { model: 'm', input: 'alpha', dimensions: 8 });
      expect(single.json.data).toHaveLength(1);
      expect(single.json.data[0].embedding).toHaveLength(8);
    });

    it('encodes embeddings as little-endian float32 base64 on request', async () => {
      const body = { model: 'm', input: 'gamma', dimensions: 16 };
      const floats = (await call(sim, 'POST', '/v1/embeddings', body)).json.data[0].embedding as number[];
      const encoded = (await call(sim, 'POST', '/v1/embeddings', { ...body, encoding_format: 'base64' })).json
        .data[0].embedding as string;
      const bytes = Buffer.from(encoded, 'base64');
      const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
      expect(decoded).toEqual(floats);
    });

    it('answers the Responses API with its usage details', async () => {
      const reply = await call(sim, 'POST', '/v1/responses', {
        model: 'gpt-5-mini',
        instructions: 'Be brief.',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'Summarise the news' }] }],
        reasoning: { effort: 'low' },
      });
      expect(reply.status).toBe(200);
      const body = reply.json;
      expect(body).toMatchObject({
        object: 'response',
        status: 'completed',
        model: 'gpt-5-mini',
        error: null,
      });
      expect(body.id).toMatch(/^resp_/);
      expect(body.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
      expect(body.output[0].content[0].type).toBe('output_text');
      expect(body.output[0].content[0].text).toContain('Summarise the news');
      const usage = body.usage;
      expect(usage.input_tokens).toBe(Math.ceil(('Be brief.'.length + 'Summarise the news'.length) / 4));
      expect(usage.input_tokens_details).toEqual({ cached_tokens: 0 });
      expect(usage.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
      expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    });

    it('answers moderations, flagging only marked categories', async () => {
      const reply = await call(sim, 'POST', '/v1/moderations', {
        input: ['a kind word', 'a [flag:violence] word'],
      });
      expect(reply.status).toBe(200);
      expect(reply.json.model).toBe('omni-moderation-latest');
      expect(reply.json.id).toMatch(/^modr-/);
      const [clean, marked] = reply.json.results;
      expect(clean.flagged).toBe(false);
      expect(Object.values(clean.categories).every((v) => v === false)).toBe(true);
      expect(Object.keys(clean.category_scores)).toEqual(Object.keys(clean.categories));
      expect(marked.flagged).toBe(true);
      expect(marked.categories.violence).toBe(true);
      expect(marked.category_scores.violence).toBeGreaterThan(0.5);
      expect(marked.categories.hate).toBe(false);
    });

    it('lists models, echoing requested ones, and reports health', async () => {
      await call(sim, 'POST', '/v1/chat/completions', { ...chat('hi'), model: 'my-custom-model' });
      const models = await call(sim, 'GET', '/v1/models');
      expect(models.json.object).toBe('list');
      const ids = (models.json.data as { id: string; object: string }[]).map((m) => m.id);
      expect(ids).toEqual(expect.arrayContaining(['gpt-4o-mini', 'my-custom-model']));
      expect((await call(sim, 'GET', '/v1/models/any-model')).json).toMatchObject({
        id: 'any-model',
        object: 'model',
      });
      const health = await call(sim, 'GET', '/healthz');
      expect(health.status).toBe(200);
      expect(health.json).toEqual({ status: 'ok' });
    });

    it('answers the same body with the same content, and a different body differently', async () => {
      const first = (await call(sim, 'POST', '/v1/chat/completions', chat('Deterministic?'))).json;
      const second = (await call(sim, 'POST', '/v1/chat/completions', chat('Deterministic?'))).json;
      const other = (await call(sim, 'POST', '/v1/chat/completions', chat('Deterministic!'))).json;
      expect(second.choices).toEqual(first.choices);
      expect(second.usage).toEqual(first.usage);
      expect(second.id).not.toBe(first.id);
      expect(other.choices[0].message.content).not.toBe(first.choices[0].message.content);
    });
  });

  describe('errors', () => {
    const expectEnvelope = (reply: Reply, status: number, param: string | null): void => {
      expect(reply.status).toBe(status);
      expect(Object.keys(reply.json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(reply.json.error.type).toBe('invalid_request_error');
      expect(reply.json.error.param).toBe(param);
      expect(typeof reply.json.error.message).toBe('string');
      expect(reply.headers['x-request-id']).toMatch(/^req_/);
    };

    it('rejects malformed JSON with 400', async () => {
      expectEnvelope(
        await call(sim, 'POST', '/v1/chat/completions', undefined, { raw: '{"model": ' }),
        400,
        null,
      );
    });

    it('rejects a missing model with 400', async () => {
      const reply = await call(sim, 'POST', '/v1/chat/completions', {
        messages: [{ role: 'user', content: 'x' }],
      });
      expectEnvelope(reply, 400, 'model');
      expectEnvelope(await call(sim, 'POST', '/v1/embeddings', { input: 'x' }), 400, 'model');
    });

    it('rejects invalid parameters and directives with 400 naming them', async () => {
      expectEnvelope(await call(sim, 'POST', '/v1/chat/completions', { model: 'm' }), 400, 'messages');
      expectEnvelope(await call(sim, 'POST', '/v1/chat/completions', chat('x', { n: 0 })), 400, 'n');
      const typo = await call(sim, 'POST', '/v1/chat/completions', chat('x', { simulate: { fail_time: 1 } }));
      expectEnvelope(typo, 400, 'simulate.fail_time');
      const noCount = await call(
        sim,
        'POST',
        '/v1/chat/completions',
        chat('x', { simulate: { fail_status: 503 } }),
      );
      expectEnvelope(noCount, 400, 'simulate.fail_times');
    });

    it('answers unknown paths and methods with 404', async () => {
      expectEnvelope(await call(sim, 'POST', '/v1/nothing-here', {}), 404, null);
      expectEnvelope(await call(sim, 'GET', '/v1/chat/completions'), 404, null);
      expectEnvelope(await call(sim, 'GET', '/elsewhere'), 404, null);
    });
  });

  describe('simulate directives', () => {
    it('fails the first fail_times attempts with 429 and Retry-After, then succeeds', async () => {
      const body = chat('retry me', { simulate: { fail_times: 2, fail_status: 429, retry_after_ms: 1500 } });
      const headers = { 'x-barge-request-id': 'batch_1-line-7' };
      for (let attempt = 1; attempt <= 2; attempt++) {
        const reply = await call(sim, 'POST', '/v1/chat/completions', body, { headers });
        expect(reply.status).toBe(429);
        expect(reply.headers['retry-after']).toBe('2');
        expect(reply.headers['retry-after-ms']).toBe('1500');
        expect(reply.json.error).toMatchObject({
          type: 'requests',
          code: 'rate_limit_exceeded',
          param: null,
        });
      }
      const third = await call(sim, 'POST', '/v1/chat/completions', body, { headers });
      expect(third.status).toBe(200);
      expect(third.json.choices[0].message.content).toContain('retry me');
      // Another request id is another request, with its own attempt count.
      const other = await call(sim, 'POST', '/v1/chat/completions', body, {
        headers: { 'x-barge-request-id': 'x' },
      });
      expect(other.status).toBe(429);
    });

    it('identifies retries by the body when there is no request id header', async () => {
      const body = chat('same bytes', { simulate: { fail_times: 1, fail_body: 'upstream exploded' } });
      const first = await call(sim, 'POST', '/v1/chat/completions', body);
      expect(first.status).toBe(500);
      expect(first.json.error).toMatchObject({ message: 'upstream exploded', type: 'server_error' });
      expect(first.headers['retry-after']).toBeUndefined();
      expect((await call(sim, 'POST', '/v1/chat/completions', body)).status).toBe(200);
    });

    it('resets the connection with fail_mode "reset"', async () => {
      const body = chat('reset me', { simulate: { fail_times: 1, fail_mode: 'reset' } });
      await expect(call(sim, 'POST', '/v1/chat/completions', body)).rejects.toThrow(
        /ECONNRESET|socket hang up/,
      );
      expect((await call(sim, 'POST', '/v1/chat/completions', body)).status).toBe(200);
      expect(sim.stats().byStatus).toEqual({ reset: 1, '200': 1 });
    });

    it('never answers with fail_mode "hang" until the client gives up', async () => {
      const body = chat('hang me', { simulate: { fail_times: 1, fail_mode: 'hang' } });
      const pending = call(sim, 'POST', '/v1/chat/completions', body, { timeoutMs: 200 });
      await expect(pending).rejects.toThrow('client timeout');
      expect(sim.stats().byStatus).toEqual({ hang: 1 });
      // The give-up closes the socket, and with it the request's in-flight slot.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(sim.stats().inFlight).toBe(0);
    });

    it('delays the answer by latency_ms', async () => {
      const started = Date.now();
      const reply = await call(
        sim,
        'POST',
        '/v1/chat/completions',
        chat('slow', { simulate: { latency_ms: 150 } }),
      );
      expect(reply.status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });
  });

  describe('stats', () => {
    it('counts requests, statuses, models and peak concurrency', async () => {
      const slow = chat('concurrent', { simulate: { latency_ms: 100 } });
      await Promise.all(Array.from({ length: 5 }, () => call(sim, 'POST', '/v1/chat/completions', slow)));
      await call(sim, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' });
      await call(sim, 'POST', '/v1/chat/completions', { messages: [] });

      const stats = sim.stats();
      expect(stats.totalRequests).toBe(7);
      expect(stats.inFlight).toBe(0);
      expect(stats.peakInFlight).toBe(5);
      expect(stats.byStatus).toEqual({ '200': 6, '400': 1 });
      expect(stats.byModel).toEqual({ 'gpt-4o-mini': 5, 'text-embedding-3-small': 1 });
      expect(stats.requestTimes).toHaveLength(7);
      expect([...stats.requestTimes].sort((a, b) => a - b)).toEqual(stats.requestTimes);
      expect(Math.abs(stats.requestTimes[0] - Date.now())).toBeLessThan(5000);

      const http = await call(sim, 'GET', '/_sim/stats');
      expect(http.json).toEqual(sim.stats());
      const filtered = (await call(sim, 'GET', '/_sim/stats?model=text-embedding-3-small')).json;
      expect(filtered).toMatchObject({ totalRequests: 1, peakInFlight: 1, byStatus: { '200': 1 } });
      expect(filtered.requestTimes).toHaveLength(1);
    });

    it('counts requests by the credential they came with, as a digest', async () => {
      await call(sim, 'POST', '/v1/chat/completions', chat('a'), {
        headers: { authorization: 'Bearer sk-one' },
      });
      await call(sim, 'POST', '/v1/chat/completions', chat('b'), {
        headers: { authorization: 'Bearer sk-one' },
      });
      await call(sim, 'POST', '/v1/chat/completions', chat('c'));
      expect(sim.stats().byCredential).toEqual({ [credentialTag('Bearer sk-one')]: 2, none: 1 });
      expect(credentialTag('Bearer sk-one')).toMatch(/^[0-9a-f]{16}$/);
      expect((await call(sim, 'GET', '/_sim/stats')).text).not.toContain('sk-one');
    });

    it('zeroes counters and attempt counts on POST /_sim/reset', async () => {
      const body = chat('again', { simulate: { fail_times: 1 } });
      expect((await call(sim, 'POST', '/v1/chat/completions', body)).status).toBe(500);
      expect((await call(sim, 'POST', '/_sim/reset')).status).toBe(200);
      expect(sim.stats()).toEqual({
        totalRequests: 0,
        inFlight: 0,
        peakInFlight: 0,
        serving: 0,
        peakServing: 0,
        avgInFlight: 0,
        avgServing: 0,
        activeMs: 0,
        byStatus: {},
        rateLimited: { capacity: 0, tpm: 0, directive: 0, global: 0 },
        byModel: {},
        byCredential: {},
        requestTimes: [],
        perSecond: [],
      });
      // The attempt count is forgotten too: the request fails again from scratch.
      expect((await call(sim, 'POST', '/v1/chat/completions', body)).status).toBe(500);
    });
  });
});

describe('simulator with api keys', () => {
  let sim: SimulatorHandle;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, apiKeys: ['sk-good'] });
  });
  afterAll(() => sim.close());

  it('answers only the keys it was given, and any other (or none) 401 invalid_api_key', async () => {
    const good = await call(sim, 'POST', '/v1/chat/completions', chat('hi'), {
      headers: { authorization: 'Bearer sk-good' },
    });
    expect(good.status).toBe(200);
    for (const headers of [{ authorization: 'Bearer sk-bad' }, {}] as Record<string, string>[]) {
      const refused = await call(sim, 'POST', '/v1/chat/completions', chat('hi'), { headers });
      expect(refused.status).toBe(401);
      expect(refused.json.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
      expect(refused.text).not.toContain('sk-bad');
    }
    expect(sim.stats().byStatus).toEqual({ '200': 1, '401': 2 });
  });
});

describe('simulator global faults', () => {
  const sims: SimulatorHandle[] = [];
  const start = async (options: Parameters<typeof startSimulator>[0]): Promise<SimulatorHandle> => {
    const sim = await startSimulator({ port: 0, ...options });
    sims.push(sim);
    return sim;
  };
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((sim) => sim.close()));
  });

  it('answers everything with 500 at error rate 1', async () => {
    const sim = await start({ errorRate: 1 });
    for (let i = 0; i < 5; i++) {
      const reply = await call(sim, 'POST', '/v1/chat/completions', chat(`q${i}`));
      expect(reply.status).toBe(500);
      expect(reply.json.error.type).toBe('server_error');
    }
    expect(sim.stats().byStatus).toEqual({ '500': 5 });
  });

  it('answers 429 with the configured Retry-After at rate-limit rate 1', async () => {
    const sim = await start({ rateLimitRate: 1, retryAfterMs: 2500 });
    const reply = await call(sim, 'POST', '/v1/embeddings', { model: 'm', input: 'x' });
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('3');
    expect(reply.headers['retry-after-ms']).toBe('2500');
  });

  it('lets a request with a fail_times directive escape the global faults', async () => {
    const sim = await start({ errorRate: 1 });
    const reply = await call(
      sim,
      'POST',
      '/v1/chat/completions',
      chat('safe', { simulate: { fail_times: 0 } }),
    );
    expect(reply.status).toBe(200);
  });

  it('reproduces the same fault sequence for the same seed', async () => {
    const statuses = async (seed: number): Promise<number[]> => {
      const sim = await start({ errorRate: 0.5, seed });
      const out: number[] = [];
      for (let i = 0; i < 20; i++)
        out.push((await call(sim, 'POST', '/v1/embeddings', { model: 'm', input: 'x' })).status);
      return out;
    };
    const a = await statuses(7);
    expect(await statuses(7)).toEqual(a);
    expect(new Set(a)).toEqual(new Set([200, 500]));
  });

  it('destroys hung connections on close()', async () => {
    const sim = await start({ hangRate: 1 });
    const pending = call(sim, 'POST', '/v1/chat/completions', chat('forever'));
    // Give the request time to arrive and be parked.
    while (sim.stats().byStatus.hang !== 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await sim.close();
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('drops requests that are waiting out their latency on close()', async () => {
    const sim = await start({ latency: 'fixed:10000' });
    const pending = call(sim, 'POST', '/v1/embeddings', { model: 'm', input: 'x' });
    while (sim.stats().inFlight !== 1) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = Date.now();
    await sim.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });
});
