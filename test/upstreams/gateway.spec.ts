import type { DataSource } from 'typeorm';
import { connectDatabase } from '../../src/database/data-source';
import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { HttpUpstream } from '../../src/upstreams/http-upstream';
import { freePort, stackConfig } from '../support/stack';
import {
  answeredModel,
  callOf,
  chat,
  cleanLimitTables,
  configWith,
  Gateways,
  httpResult,
  uniqueName,
} from './support';

/** Routing, fallbacks, retries and aborts, against in-process simulators and the test Postgres. */
describe('upstream gateway', () => {
  let db: DataSource;
  let simA: SimulatorHandle;
  let simB: SimulatorHandle;
  const gateways = new Gateways(() => db);

  beforeAll(async () => {
    db = await connectDatabase(stackConfig(), 'test-upstreams');
    [simA, simB] = await Promise.all([startSimulator({ port: 0 }), startSimulator({ port: 0 })]);
  });

  afterEach(async () => {
    await gateways.closeAll();
    simA.reset();
    simB.reset();
  });

  afterAll(async () => {
    await cleanLimitTables(db);
    await db.destroy();
    await Promise.all([simA.close(), simB.close()]);
  });

  const closedPortUrl = async (): Promise<string> => `http://127.0.0.1:${await freePort()}/v1`;

  describe('routing', () => {
    it('routes by model: exact names, wildcards, and aliases rewritten to the upstream name', async () => {
      const a = uniqueName('a');
      const b = uniqueName('b');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            {
              name: a,
              baseUrl: simA.baseUrl,
              models: ['gpt-4o*', 'text-embedding-3-small'],
              aliases: { fast: 'gpt-4o-mini' },
            },
            { name: b, baseUrl: simB.baseUrl, models: ['*'] },
          ],
        }),
      );

      const exact = await gateway.call(
        callOf({ endpoint: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'hi' } }),
      );
      expect(httpResult(exact)).toMatchObject({ status: 200, upstream: a, attempts: 1 });
      const wildcard = await gateway.call(callOf({ body: chat('hello', { model: 'gpt-4o' }) }));
      expect(httpResult(wildcard)).toMatchObject({ status: 200, upstream: a });
      expect(answeredModel(wildcard)).toBe('gpt-4o');

      const aliased = await gateway.call(callOf({ body: chat('hello', { model: 'fast' }) }));
      expect(httpResult(aliased)).toMatchObject({ status: 200, upstream: a });
      // The upstream saw its own name for the model, never the alias.
      expect(answeredModel(aliased)).toBe('gpt-4o-mini');
      expect(simA.stats().byModel).toEqual({ 'text-embedding-3-small': 1, 'gpt-4o': 1, 'gpt-4o-mini': 1 });

      const elsewhere = await gateway.call(callOf({ body: chat('hello', { model: 'llama-3-70b' }) }));
      expect(httpResult(elsewhere)).toMatchObject({ status: 200, upstream: b });
      expect(httpResult(elsewhere).upstreamRequestId).toMatch(/^req_/);
      expect(simB.stats().byModel).toEqual({ 'llama-3-70b': 1 });

      expect(gateway.checkRoute('fast', '/v1/chat/completions', null)).toMatchObject({ ok: true });
      expect(gateway.checkRoute('anything', '/v1/chat/completions', null)).toMatchObject({ ok: true });
      expect(gateway.checkRoute('gpt-4o', '/v1/files', null)).toMatchObject({ ok: false });
    });

    it('sends a pinned provider all traffic, and refuses models it does not serve', async () => {
      const a = uniqueName('a');
      const b = uniqueName('b');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            { name: a, baseUrl: simA.baseUrl, models: ['gpt-4o*'], priority: 1 },
            { name: b, baseUrl: simB.baseUrl, models: ['*'], priority: 2 },
          ],
        }),
      );
      expect(httpResult(await gateway.call(callOf()))).toMatchObject({ upstream: a });
      expect(httpResult(await gateway.call(callOf({ provider: b })))).toMatchObject({ upstream: b });

      const refused = gateway.checkRoute('llama-3', '/v1/chat/completions', a);
      expect(refused.ok).toBe(false);
      expect(refused.reason).toContain(`'${a}' does not serve the model 'llama-3'`);
      expect(gateway.checkRoute('gpt-4o', '/v1/chat/completions', 'nobody').reason).toContain(
        "provider 'nobody' is not configured",
      );
      const result = await gateway.call(callOf({ provider: a, body: chat('hi', { model: 'llama-3' }) }));
      expect(result).toMatchObject({ kind: 'error', code: 'model_not_found', upstream: null, attempts: 0 });
      expect(simA.stats().totalRequests + simB.stats().totalRequests).toBe(2);
    });

    it('serves every model from `simulatorUrl` when no upstream is configured', async () => {
      const gateway = gateways.make(configWith({ simulatorUrl: simA.baseUrl }));
      const result = await gateway.call(callOf({ body: chat('hi', { model: 'any-model-at-all' }) }));
      expect(httpResult(result)).toMatchObject({ status: 200, upstream: 'simulator' });
      expect(simA.stats().totalRequests).toBe(1);
    });

    it('only ever calls the base URL plus the endpoint, whatever the body says', async () => {
      const gateway = gateways.make(
        configWith({ upstreams: [{ name: uniqueName('a'), baseUrl: simA.baseUrl }] }),
      );
      const result = await gateway.call(
        callOf({
          endpoint: '/v1/embeddings',
          body: {
            model: 'text-embedding-3-small',
            input: 'hi',
            url: 'http://127.0.0.1:1/v1/chat',
            endpoint: '/admin',
          },
        }),
      );
      expect(httpResult(result).body).toMatchObject({ object: 'list' });
      const unsupported = await gateway.call(callOf({ endpoint: '/v1/../_sim/reset' }));
      expect(unsupported).toMatchObject({ kind: 'error', code: 'invalid_url', attempts: 0 });
      expect(simA.stats().totalRequests).toBe(1);
    });
  });

  describe('fallbacks', () => {
    it('moves to the next upstream when the first is down, and stops trying it once its circuit opens', async () => {
      const down = uniqueName('down');
      const b = uniqueName('b');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            { name: down, baseUrl: await closedPortUrl(), priority: 1 },
            { name: b, baseUrl: simB.baseUrl, priority: 2 },
          ],
          routing: { breakerThreshold: 3 },
        }),
      );
      const attempts: number[] = [];
      for (let i = 0; i < 8; i++) {
        const result = httpResult(await gateway.call(callOf()));
        expect(result).toMatchObject({ status: 200, upstream: b });
        attempts.push(result.attempts);
      }
      // Three connection errors open the circuit; after that the first upstream gets nothing.
      expect(attempts).toEqual([2, 2, 2, 1, 1, 1, 1, 1]);
      expect(simB.stats().totalRequests).toBe(8);
    });

    it('moves traffic away from an upstream that keeps answering 500', async () => {
      const failing = await startSimulator({ port: 0, errorRate: 1 });
      try {
        const a = uniqueName('a');
        const b = uniqueName('b');
        const gateway = gateways.make(
          configWith({
            upstreams: [
              { name: a, baseUrl: failing.baseUrl, priority: 1 },
              { name: b, baseUrl: simB.baseUrl, priority: 2 },
            ],
            routing: { breakerThreshold: 3 },
          }),
        );
        for (let i = 0; i < 10; i++) {
          expect(httpResult(await gateway.call(callOf()))).toMatchObject({ status: 200, upstream: b });
        }
        expect(failing.stats().totalRequests).toBe(3);
        expect(simB.stats().totalRequests).toBe(10);
      } finally {
        await failing.close();
      }
    });

    it('probes an open circuit after the cool-down and returns to the upstream once it answers', async () => {
      const port = await freePort();
      const primary = uniqueName('primary');
      const b = uniqueName('b');
      const gateway = gateways.make(
        configWith({
          upstreams: [
            { name: primary, baseUrl: `http://127.0.0.1:${port}/v1`, priority: 1 },
            { name: b, baseUrl: simB.baseUrl, priority: 2 },
          ],
          routing: { breakerThreshold: 2, breakerCooldownMs: 300 },
        }),
      );
      for (let i = 0; i < 3; i++)
        expect(httpResult(await gateway.call(callOf()))).toMatchObject({ upstream: b });
      const revived = await startSimulator({ port });
      try {
        // Still open: the cool-down has not passed.
        expect(httpResult(await gateway.call(callOf()))).toMatchObject({ upstream: b, attempts: 1 });
        await new Promise((r) => setTimeout(r, 350));
        expect(httpResult(await gateway.call(callOf()))).toMatchObject({ upstream: primary, attempts: 1 });
        expect(httpResult(await gateway.call(callOf()))).toMatchObject({ upstream: primary, attempts: 1 });
        expect(revived.stats().totalRequests).toBe(2);
      } finally {
        await revived.close();
      }
    });
  });

  describe('retries', () => {
    const single = (routing: object = {}, extra: object = {}) =>
      gateways.make(
        configWith({ upstreams: [{ name: uniqueName('a'), baseUrl: simA.baseUrl, ...extra }], routing }),
      );

    it('honours Retry-After before the next attempt', async () => {
      const gateway = single();
      const onRetry = jest.fn();
      const result = await gateway.call(
        callOf({
          body: chat('slow down', { simulate: { fail_times: 1, fail_status: 429, retry_after_ms: 500 } }),
          onRetry,
        }),
      );
      expect(httpResult(result)).toMatchObject({ status: 200, attempts: 2 });
      expect(onRetry.mock.calls).toEqual([[1]]);
      const [first, second] = simA.stats().requestTimes;
      expect(second - first).toBeGreaterThanOrEqual(500);
    });

    it.each([
      ['500', { fail_status: 500 }],
      ['503', { fail_status: 503, retry_after_ms: 10 }],
      ['429', { fail_status: 429, retry_after_ms: 10 }],
      ['408', { fail_status: 408 }],
      ['409', { fail_status: 409 }],
      ['a connection reset', { fail_mode: 'reset' }],
    ])('retries %s, then succeeds', async (_, directive) => {
      const gateway = single();
      const onRetry = jest.fn();
      const result = await gateway.call(
        callOf({ body: chat('flaky', { simulate: { fail_times: 2, ...directive } }), onRetry }),
      );
      expect(httpResult(result)).toMatchObject({ status: 200, attempts: 3 });
      expect(onRetry.mock.calls).toEqual([[1], [2]]);
      expect(simA.stats().totalRequests).toBe(3);
    });

    it('gives up on an attempt after the upstream timeout, and retries it', async () => {
      const gateway = single({}, { timeoutMs: 200 });
      const result = await gateway.call(
        callOf({ body: chat('hang', { simulate: { fail_times: 1, fail_mode: 'hang' } }) }),
      );
      expect(httpResult(result)).toMatchObject({ status: 200, attempts: 2 });
    });

    it.each([400, 401, 404, 422])('returns %i at once, with the upstream body', async (status) => {
      const gateway = single();
      const onRetry = jest.fn();
      const result = await gateway.call(
        callOf({
          body: chat('bad', { simulate: { fail_times: 5, fail_status: status, fail_body: 'nope' } }),
          onRetry,
        }),
      );
      expect(httpResult(result)).toMatchObject({
        status,
        attempts: 1,
        body: { error: { message: 'nope', param: null } },
      });
      expect(onRetry).not.toHaveBeenCalled();
      expect(simA.stats().totalRequests).toBe(1);
    });

    it('returns the upstream validation error of a bad request as final', async () => {
      const gateway = single();
      const result = await gateway.call(callOf({ body: { model: 'gpt-4o-mini' } }));
      expect(httpResult(result)).toMatchObject({
        status: 400,
        attempts: 1,
        body: { error: { code: 'missing_required_parameter', param: 'messages' } },
      });
    });

    it("makes a body JSON cannot express that request's error: sent nowhere, its slot given back", async () => {
      const gateway = single({}, { limits: { maxConcurrency: 1 } });
      // Deeper than JSON.stringify walks (a parsed input line never is; validation caps depth).
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 100_000; i++) deep = { deep };
      const result = await gateway.call(callOf({ body: chat('hi', { metadata: deep }) }));
      expect(result).toMatchObject({
        kind: 'error',
        code: 'invalid_request_body',
        upstream: null,
        attempts: 0,
        message: expect.stringMatching(/could not be serialized/),
      });
      expect(simA.stats().totalRequests).toBe(0);
      // The one slot is free again: the next request goes straight through.
      expect(httpResult(await gateway.call(callOf())).status).toBe(200);
    });

    it('returns the last error once the attempt budget is spent, counting earlier runs', async () => {
      // A high breaker threshold keeps the circuit closed: this is about the budget alone.
      const gateway = single({ maxAttempts: 3, breakerThreshold: 100 });
      const failing = { simulate: { fail_times: 1e9, fail_status: 500, fail_body: 'still broken' } };
      const fresh = await gateway.call(callOf({ body: chat('x', failing) }));
      expect(httpResult(fresh)).toMatchObject({
        status: 500,
        attempts: 3,
        body: { error: { message: 'still broken' } },
      });
      expect(simA.stats().totalRequests).toBe(3);

      simA.reset();
      const resumed = await gateway.call(callOf({ body: chat('y', failing), attemptsSoFar: 2 }));
      expect(httpResult(resumed)).toMatchObject({ status: 500, attempts: 3 });
      // Even a budget spent before a restart gets one attempt, so there is an outcome to report.
      const spent = await gateway.call(callOf({ body: chat('z', failing), attemptsSoFar: 7 }));
      expect(httpResult(spent)).toMatchObject({ status: 500, attempts: 8 });
      expect(simA.stats().totalRequests).toBe(2);
    });

    it('reports a request that never got an answer as an error with a code', async () => {
      const name = uniqueName('down');
      const gateway = gateways.make(
        configWith({
          upstreams: [{ name, baseUrl: await closedPortUrl() }],
          routing: { maxAttempts: 2, breakerThreshold: 10 },
        }),
      );
      const result = await gateway.call(callOf());
      expect(result).toMatchObject({
        kind: 'error',
        code: 'upstream_connection_error',
        upstream: name,
        attempts: 2,
      });
      expect(result.kind === 'error' && result.message).toContain('ECONNREFUSED');
    });

    it('starts no attempt after the deadline, and leaves the request unanswered there', async () => {
      // Attempts to spare (8 jittered 100 ms backoffs can fit in 400 ms): the deadline ends it.
      // When each attempt starts is taken where the gateway hands it to the HTTP client: the
      // simulator sees it a moment later, which can be past a deadline the start was before.
      const started: number[] = [];
      const gateway = gateways.make(
        configWith({
          upstreams: [{ name: uniqueName('a'), baseUrl: simA.baseUrl }],
          routing: { backoffBaseMs: 100, backoffMaxMs: 100, maxAttempts: 1_000 },
        }),
        {
          transport: (upstream) => {
            const http = new HttpUpstream(upstream);
            return {
              send: (request) => {
                started.push(Date.now());
                return http.send(request);
              },
              close: () => http.close(),
            };
          },
        },
      );
      const deadline = Date.now() + 400;
      const result = await gateway.call(
        callOf({ body: chat('x', { simulate: { fail_times: 1e9, fail_status: 500 } }), deadline }),
      );
      // Out of time, not of attempts: no final answer (the batch marks it batch_expired).
      expect(result).toMatchObject({ kind: 'unanswered', reason: 'deadline' });
      expect(started.length).toBeGreaterThanOrEqual(2);
      expect(started.length).toBe(result.attempts);
      expect(simA.stats().requestTimes.length).toBe(result.attempts);
      expect(Math.max(...started)).toBeLessThan(deadline);
    });

    it('answers a request still waiting for capacity at its deadline', async () => {
      const gateway = single({}, { limits: { maxConcurrency: 1 } });
      const blocker = gateway.call(callOf({ body: chat('slow', { simulate: { latency_ms: 600 } }) }));
      await waitUntil(() => simA.stats().totalRequests === 1);
      const late = await gateway.call(callOf({ deadline: Date.now() + 150 }));
      expect(late).toMatchObject({ kind: 'unanswered', reason: 'deadline', attempts: 0 });
      expect(httpResult(await blocker).status).toBe(200);
      expect(simA.stats().totalRequests).toBe(1);
    });

    it('answers each waiting request at its own deadline, those of one deadline together, aborted ones at once', async () => {
      const gateway = single({}, { limits: { maxConcurrency: 1 } });
      const blocker = gateway.call(callOf({ body: chat('slow', { simulate: { latency_ms: 700 } }) }));
      await waitUntil(() => simA.stats().totalRequests === 1);
      const [early, later] = [Date.now() + 150, Date.now() + 350];
      const ended = (deadline: number, signal?: AbortSignal) =>
        gateway.call(callOf({ deadline, ...(signal && { signal }) })).then(
          (result) => ({ result, at: Date.now() }),
          (error: Error) => ({ result: error.name, at: Date.now() }),
        );
      const cancelled = new AbortController();
      const calls = [
        ...Array.from({ length: 20 }, () => ended(early)),
        ended(early, cancelled.signal),
        ...Array.from({ length: 20 }, () => ended(later)),
      ];
      cancelled.abort();
      const results = await Promise.all(calls);
      const aborted = results[20];
      expect(aborted.result).toBe('AbortError');
      expect(aborted.at).toBeLessThan(early);
      for (const [i, { result, at }] of results.entries()) {
        if (i === 20) continue;
        const deadline = i < 20 ? early : later;
        expect(result).toMatchObject({ kind: 'unanswered', reason: 'deadline', attempts: 0 });
        expect(at).toBeGreaterThanOrEqual(deadline - 5); // timers may fire a little early by Date.now()
        expect(at).toBeLessThan(deadline + 150);
      }
      expect(httpResult(await blocker).status).toBe(200);
      expect(simA.stats().totalRequests).toBe(1);
    });
  });

  describe('abort', () => {
    const single = (limits: object = {}) =>
      gateways.make(configWith({ upstreams: [{ name: uniqueName('a'), baseUrl: simA.baseUrl, limits }] }));

    it('aborts the request in flight', async () => {
      const gateway = single();
      const controller = new AbortController();
      const pending = gateway.call(
        callOf({ body: chat('slow', { simulate: { latency_ms: 30_000 } }), signal: controller.signal }),
      );
      await waitUntil(() => simA.stats().inFlight === 1);
      controller.abort(new Error('batch cancelled'));
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      await waitUntil(() => simA.stats().inFlight === 0);
    });

    it('aborts while waiting for a slot and while backing off', async () => {
      const gateway = single({ maxConcurrency: 1 });
      const blocker = gateway.call(callOf({ body: chat('slow', { simulate: { latency_ms: 500 } }) }));
      await waitUntil(() => simA.stats().totalRequests === 1);
      const waiting = new AbortController();
      const queued = gateway.call(callOf({ signal: waiting.signal }));
      waiting.abort();
      await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
      await blocker;

      const backingOff = new AbortController();
      const retrying = gateway.call(
        callOf({
          body: chat('x', { simulate: { fail_times: 1, fail_status: 429, retry_after_ms: 30_000 } }),
          signal: backingOff.signal,
        }),
      );
      await waitUntil(() => simA.stats().totalRequests === 2);
      backingOff.abort();
      await expect(retrying).rejects.toMatchObject({ name: 'AbortError' });
      expect(simA.stats().totalRequests).toBe(2);

      const already = new AbortController();
      already.abort();
      await expect(gateway.call(callOf({ signal: already.signal }))).rejects.toMatchObject({
        name: 'AbortError',
      });
    });

    it("aborts all 300 calls of a chunk in flight at once on the chunk's one signal", async () => {
      const gateway = single({ maxConcurrency: 300 });
      const chunk = new AbortController();
      const drain = new AbortController();
      const calls = Array.from({ length: 300 }, (_, i) =>
        gateway.call(
          callOf({
            body: chat(`slow ${i}`, { simulate: { latency_ms: 30_000 } }),
            signal: chunk.signal,
            hold: drain.signal,
          }),
        ),
      );
      await waitUntil(() => simA.stats().inFlight === 300);
      chunk.abort(new Error('batch cancelled'));
      const results = await Promise.allSettled(calls);
      expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError')).toBe(
        true,
      );
      await waitUntil(() => simA.stats().inFlight === 0);
    });

    it('aborts what is in flight when the gateway closes', async () => {
      const gateway = single();
      const pending = gateway.call(callOf({ body: chat('slow', { simulate: { latency_ms: 30_000 } }) }));
      await waitUntil(() => simA.stats().inFlight === 1);
      const rejected = expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      await gateway.close();
      await rejected;
    });
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
