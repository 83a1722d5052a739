import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { loadUpstreams, Upstream } from '../../src/upstreams/registry';
import { requestedModel, Router } from '../../src/upstreams/router';
import { configWith } from './support';

const upstream = (name: string, extra: object = {}): object => ({
  name,
  baseUrl: 'https://api.example.com/v1',
  ...extra,
});
const load = (upstreams: object[], env: NodeJS.ProcessEnv = {}): Upstream[] =>
  loadUpstreams(configWith({ upstreams }), env);

describe('upstream registry', () => {
  it('matches exact names and wildcards, and maps aliases to the upstream name', () => {
    const [u] = load([
      upstream('a', { models: ['gpt-4o', 'o3*', '*-mini'], aliases: { fast: 'gpt-4o-mini' } }),
    ]);
    expect(['gpt-4o', 'o3', 'o3-pro', 'gpt-4.1-mini', 'fast'].map((m) => u.serves(m))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['gpt-4o-2024', 'xo3', 'gpt-4.1', 'gpt.4o'].map((m) => u.serves(m))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(u.upstreamModel('fast')).toBe('gpt-4o-mini');
    expect(u.upstreamModel('gpt-4o')).toBe('gpt-4o');
    // Regex characters in a model name are literal.
    const [dots] = load([upstream('b', { models: ['gpt-4.1'] })]);
    expect(dots.serves('gpt-441')).toBe(false);
  });

  it('serves everything by default', () => {
    const [u] = load([upstream('a')]);
    expect(u.serves('whatever/model:tag')).toBe(true);
  });

  it('builds the URL from the base URL and the endpoint without its /v1', () => {
    const [a, b] = load([
      upstream('a', { baseUrl: 'https://api.example.com/v1/' }),
      upstream('b', { baseUrl: 'http://proxy:8080/openai/v1?api-version=2024' }),
    ]);
    expect(a.url('/v1/chat/completions').href).toBe('https://api.example.com/v1/chat/completions');
    expect(b.url('/v1/embeddings').href).toBe('http://proxy:8080/openai/v1/embeddings?api-version=2024');
  });

  it('reads API keys once, from the environment or a file, and keeps them out of sight', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'barge-key-')), 'key');
    writeFileSync(file, '  sk-from-file\n');
    const [fromEnv, fromFile, none] = load(
      [
        upstream('a', { apiKeyEnv: 'A_KEY', headers: { 'X-Team': 'ml', 'Api-Key': 'azure-secret' } }),
        upstream('b', { apiKeyFile: file }),
        upstream('c'),
      ],
      { A_KEY: 'sk-from-env' },
    );
    expect(fromEnv.headers).toEqual({
      authorization: 'Bearer sk-from-env',
      'x-team': 'ml',
      'api-key': 'azure-secret',
    });
    expect(fromFile.headers).toEqual({ authorization: 'Bearer sk-from-file' });
    expect(none.headers).toEqual({});
    const shown = `${inspect(fromEnv, { depth: 10, showHidden: true })} ${JSON.stringify(fromEnv)}`;
    expect(shown).not.toMatch(/sk-from-env|azure-secret/);
    expect(fromEnv.redact('key sk-from-env and azure-secret, team ml')).toBe(
      'key [redacted] and [redacted], team ml',
    );
  });

  it('makes up a keyless `simulator` upstream serving everything when only simulatorUrl is set', () => {
    const upstreams = loadUpstreams(configWith({ simulatorUrl: 'http://127.0.0.1:8100/v1' }), {});
    expect(upstreams.map((u) => u.name)).toEqual(['simulator']);
    expect(upstreams[0].serves('anything')).toBe(true);
    expect(upstreams[0].headers).toEqual({});
    expect(loadUpstreams(configWith({}), {})).toEqual([]);
  });
});

describe('router', () => {
  const router = new Router(
    load([
      upstream('backup', { priority: 200 }),
      upstream('primary', { priority: 10, models: ['gpt-*'] }),
      upstream('also-primary', { priority: 10, models: ['gpt-4o'] }),
    ]),
  );
  const names = (model: string, provider: string | null = null): string[] | string => {
    const route = router.route(model, '/v1/chat/completions', provider);
    return route.ok ? route.candidates.map((u) => u.name) : route.reason;
  };

  it('orders candidates by priority, then configuration order', () => {
    expect(names('gpt-4o')).toEqual(['primary', 'also-primary', 'backup']);
    expect(names('gpt-4.1')).toEqual(['primary', 'backup']);
    expect(names('llama')).toEqual(['backup']);
  });

  it('routes a pinned provider alone, and says why it cannot', () => {
    expect(names('gpt-4o', 'backup')).toEqual(['backup']);
    expect(names('llama', 'primary')).toBe("The provider 'primary' does not serve the model 'llama'.");
    expect(names('llama', 'other')).toBe("The provider 'other' is not configured.");
    expect(router.check('llama', '/v1/chat/completions', 'primary')).toEqual({
      ok: false,
      reason: "The provider 'primary' does not serve the model 'llama'.",
    });
  });

  it('rejects unknown endpoints and models nobody serves', () => {
    expect(router.route('gpt-4o', '/v1/images/generations', null)).toMatchObject({
      ok: false,
      code: 'invalid_url',
    });
    const lonely = new Router(load([upstream('a', { models: ['gpt-4o'] })]));
    expect(lonely.route('claude', '/v1/chat/completions', null)).toEqual({
      ok: false,
      code: 'model_not_found',
      reason: "The model 'claude' is not served by any configured upstream.",
    });
  });

  it('takes the model from the body, defaulting it for moderations only', () => {
    expect(requestedModel('/v1/chat/completions', { model: 'gpt-4o' })).toBe('gpt-4o');
    expect(requestedModel('/v1/moderations', { input: 'x' })).toBe('omni-moderation-latest');
    expect(requestedModel('/v1/chat/completions', { messages: [] })).toBeNull();
    expect(requestedModel('/v1/chat/completions', { model: 42 })).toBeNull();
  });
});
