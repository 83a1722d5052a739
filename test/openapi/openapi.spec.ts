import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RequestMethod } from '@nestjs/common';
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { AppModule } from '../../src/app.module';
import { createTenantKey, uniqueTenant } from '../support/api';
import { chatLine } from '../support/batches';
import { guardLoopback, launchChromium, pageProblems } from '../support/browser';
import { apiUrl, ROOT, waitFor } from '../support/stack';

/**
 * The OpenAPI description at /v1/openapi.json: every route of the application is in it, and
 * real answers of the running API validate against the schemas it gives for them. /docs shows
 * it in a real browser, from Barge's own files.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** @ApiExcludeController()'s metadata key (@nestjs/swagger's DECORATORS, not exported). */
const API_EXCLUDE_CONTROLLER = 'swagger/apiExcludeController';

interface Route {
  method: string;
  path: string;
}

/** The routes of every controller of AppModule and the modules it imports, from Nest's metadata. */
function appRoutes(): Route[] {
  const routes: Route[] = [];
  const seen = new Set<unknown>();
  const visit = (mod: unknown) => {
    const target = (mod as { module?: unknown }).module ?? mod;
    if (!target || seen.has(target)) return;
    seen.add(target);
    for (const imported of (Reflect.getMetadata('imports', target as object) as unknown[]) ?? [])
      visit(imported);
    for (const controller of (Reflect.getMetadata('controllers', target as object) as {
      prototype: object;
    }[]) ?? []) {
      if (Reflect.getMetadata(API_EXCLUDE_CONTROLLER, controller)?.[0]) continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
      const prototype = controller.prototype as Record<string, unknown>;
      for (const name of Object.getOwnPropertyNames(prototype)) {
        const handler = prototype[name];
        if (typeof handler !== 'function') continue;
        const path: unknown = Reflect.getMetadata(PATH_METADATA, handler);
        const method: unknown = Reflect.getMetadata(METHOD_METADATA, handler);
        if (typeof path !== 'string' || typeof method !== 'number') continue;
        const full = `/${[base, path].filter((p) => p && p !== '/').join('/')}`.replace(/:(\w+)/g, '{$1}');
        routes.push({ method: RequestMethod[method].toLowerCase(), path: full });
      }
    }
  };
  visit(AppModule);
  return routes;
}

describe('OpenAPI description', () => {
  const base = apiUrl();
  let doc: Json;
  let key: string;
  let validate: (method: string, path: string, status: number, body: unknown) => void;

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('openapi'));
    const res = await fetch(`${base}/v1/openapi.json`); // public: no key
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as Json;
    // JSON Schema (draft-07 keywords only in schemas.ts, so this validator reads them as 3.1 does).
    const ajv = new Ajv({ allErrors: true });
    ajv.addSchema({ $id: 'barge', components: doc.components }, 'barge');
    validate = (method, path, status, body) => {
      const operation = doc.paths[path]?.[method];
      expect({ path, method, documented: Boolean(operation) }).toEqual({ path, method, documented: true });
      const response = operation.responses[String(status)] ?? operation.responses.default;
      expect({ path, method, status, response: Boolean(response) }).toMatchObject({ response: true });
      const schema = response.content?.['application/json']?.schema as Json;
      expect(schema).toBeDefined();
      const pointer = String(schema.$ref ?? '').replace(/^#/, 'barge#');
      const check = pointer ? ajv.getSchema(pointer) : ajv.compile(schema);
      expect(check).toBeDefined();
      const ok = check!(body);
      expect({ path, method, status, errors: ok ? null : check!.errors }).toEqual({
        path,
        method,
        status,
        errors: null,
      });
    };
  });

  it('is OpenAPI 3.1 with bearer auth, and documents every route of the app', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('Barge');
    expect(doc.info.version).toBe(
      (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const routes = appRoutes();
    // The controllers are really found (a broken walk would pass the next check vacuously).
    expect(routes).toEqual(
      expect.arrayContaining([
        { method: 'post', path: '/v1/batches' },
        { method: 'post', path: '/v1/batches/{id}/cancel' },
        { method: 'get', path: '/v1/files/{id}/content' },
        { method: 'get', path: '/readyz' },
      ]),
    );
    for (const { method, path } of routes) {
      const operation = doc.paths[path]?.[method] as Json | undefined;
      expect({ method, path, summary: operation?.summary }).toEqual({
        method,
        path,
        summary: expect.any(String),
      });
      expect(Object.keys(operation!.responses).length).toBeGreaterThan(0);
      if (path.startsWith('/v1/')) {
        expect(operation!.security).toEqual([{ bearer: [] }]);
        expect(operation!.responses.default.content['application/json'].schema).toEqual({
          $ref: '#/components/schemas/Error',
        });
      }
    }
    // Nothing documented that the app does not serve (the console is not API).
    const documented = Object.entries(doc.paths as Json).flatMap(([path, ops]) =>
      Object.keys(ops as Json).map((method) => ({ method, path })),
    );
    expect(documented.sort(byRoute)).toEqual(routes.sort(byRoute));
    // Every reference resolves.
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
    for (const ref of new Set(refs)) expect(doc.components.schemas[ref.split('/').pop()!]).toBeDefined();
  });

  it("marks Barge's additions with x-barge", () => {
    const create = doc.paths['/v1/batches'].post as Json;
    const headers = (create.parameters as Json[]).filter((p) => p.in === 'header');
    expect(headers.map((h) => [h.name, h['x-barge']]).sort()).toEqual([
      ['idempotency-key', true],
      ['x-barge-provider', true],
      ['x-barge-provider-key', true],
    ]);
    const list = doc.paths['/v1/batches'].get as Json;
    expect((list.parameters as Json[]).find((p) => p.name === 'tenant')).toMatchObject({
      in: 'query',
      'x-barge': true,
    });
    expect(doc.paths['/readyz'].get['x-barge']).toBe(true);
    expect(doc.paths['/v1/batches/{id}'].get['x-barge']).toBeUndefined();
  });

  it('validates real answers of the API against their schemas', async () => {
    const call = async (method: string, path: string, init: RequestInit = {}, auth = true) => {
      const res = await fetch(`${base}${path}`, {
        method,
        ...init,
        headers: { ...(auth && { authorization: `Bearer ${key}` }), ...(init.headers as Json) },
      });
      return { status: res.status, body: (await res.json()) as Json };
    };
    const check = async (
      method: string,
      docPath: string,
      path: string,
      init?: RequestInit,
      auth?: boolean,
    ) => {
      const { status, body } = await call(method.toUpperCase(), path, init, auth);
      validate(method, docPath, status, body);
      return { status, body };
    };

    await check('get', '/healthz', '/healthz');
    expect((await check('get', '/readyz', '/readyz')).status).toBe(200);

    const form = new FormData();
    form.append('purpose', 'batch');
    const lines = [chatLine('a'), chatLine('b', { simulate: { fail_times: 99, fail_status: 400 } })];
    const text = lines.map((l) => JSON.stringify({ method: 'POST', ...l })).join('\n') + '\n';
    form.append('file', new Blob([text]), 'input.jsonl');
    const file = (await check('post', '/v1/files', '/v1/files', { body: form })).body;
    expect(file.object).toBe('file');
    await check('get', '/v1/files', '/v1/files?limit=5');
    await check('get', '/v1/files/{id}', `/v1/files/${file.id}`);
    const estimate = await check(
      'get',
      '/v1/files/{id}/cost_estimate',
      `/v1/files/${file.id}/cost_estimate?endpoint=/v1/chat/completions`,
    );
    expect(estimate.body).toMatchObject({ object: 'file.cost_estimate', requests: 2 });

    const json = (body: unknown): RequestInit => ({
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    const created = await check(
      'post',
      '/v1/batches',
      '/v1/batches',
      json({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { from: 'openapi' },
      }),
    );
    expect(created.status).toBe(200);
    const id = String(created.body.id);
    let ended: Json = {};
    await waitFor('the batch to end', async () => {
      ended = (await check('get', '/v1/batches/{id}', `/v1/batches/${id}`)).body;
      return ended.status === 'completed';
    });
    expect(ended.output_file_id).toEqual(expect.any(String));
    expect(ended.errors).toBeNull();
    await check('get', '/v1/batches', '/v1/batches?limit=3');
    // A batch with validation errors: errors.data filled in.
    const bad = new FormData();
    bad.append('purpose', 'batch');
    bad.append('file', new Blob(['{"custom_id":"x"}\nnot json\n']), 'bad.jsonl');
    const badFile = (await call('POST', '/v1/files', { body: bad })).body;
    const failing = (
      await check(
        'post',
        '/v1/batches',
        '/v1/batches',
        json({ input_file_id: badFile.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
      )
    ).body;
    await waitFor('validation to fail', async () => {
      const b = (await check('get', '/v1/batches/{id}', `/v1/batches/${failing.id}`)).body;
      return b.status === 'failed' && b.errors?.data?.length > 0;
    });

    // Errors, in OpenAI's envelope.
    const cancelDone = await check('post', '/v1/batches/{id}/cancel', `/v1/batches/${id}/cancel`);
    expect(cancelDone.status).toBe(409);
    expect((await check('get', '/v1/batches/{id}', '/v1/batches/batch_nope')).status).toBe(404);
    expect((await check('get', '/v1/batches', '/v1/batches', {}, false)).status).toBe(401);
    expect((await check('post', '/v1/batches', '/v1/batches', json({ endpoint: '/v1/nope' }))).status).toBe(
      400,
    );

    // Cancel a running one.
    const slowForm = new FormData();
    slowForm.append('purpose', 'batch');
    slowForm.append(
      'file',
      new Blob([JSON.stringify({ method: 'POST', ...chatLine('s', { simulate: { latency_ms: 60_000 } }) })]),
      'slow.jsonl',
    );
    const slowFile = (await call('POST', '/v1/files', { body: slowForm })).body;
    const slow = (
      await call(
        'POST',
        '/v1/batches',
        json({ input_file_id: slowFile.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
      )
    ).body;
    const cancelled = await check('post', '/v1/batches/{id}/cancel', `/v1/batches/${slow.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(['cancelling', 'cancelled']).toContain(cancelled.body.status);

    const deleted = await check('delete', '/v1/files/{id}', `/v1/files/${badFile.id}`);
    expect(deleted.body).toEqual({ id: badFile.id, object: 'file', deleted: true });
  });

  describe('/docs in a browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(() => browser?.close());

    it('shows every operation, from files Barge serves itself', async () => {
      const context = await browser.newContext();
      const traffic = await guardLoopback(context);
      const page = await context.newPage();
      const problems = pageProblems(page);
      await page.goto(`${base}/docs`);
      const operations = Object.values(doc.paths as Json).reduce((n, ops) => n + Object.keys(ops).length, 0);
      await waitFor('the operations', async () => (await page.locator('.opblock').count()) === operations);
      await expect(
        page.locator('.opblock-summary-path', { hasText: '/v1/batches/{id}/cancel' }).count(),
      ).resolves.toBe(1);
      expect(traffic.requests.length).toBeGreaterThan(0);
      expect(traffic.offLoopback).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    });
  });
});

const byRoute = (a: Route, b: Route) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`);
