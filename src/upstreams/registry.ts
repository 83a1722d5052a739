import { readFileSync } from 'node:fs';
import type { BargeConfig, UpstreamConfig } from '../config/config';
import { effectiveUpstreams } from './provider-names';
import { Secret } from './secret';

/** Extra headers whose values are credentials too (Azure's `api-key`, custom auth schemes). */
const SECRET_HEADER = /auth|key|token|secret|passw/i;

/**
 * A `gpt-4o*`-style model pattern: `*` is any run of characters, everything else is literal.
 * Matched without regular expressions (a pattern with several `*` compiled to one can
 * backtrack for ages on a crafted name): the literal pieces between the stars are found left
 * to right, each at its first place after the previous one, which is correct for `*`-only
 * globs and costs one string search per piece, no backtracking.
 */
export class ModelPattern {
  private readonly pieces: string[];

  constructor(readonly pattern: string) {
    this.pieces = pattern.split('*');
  }

  matches(name: string): boolean {
    const { pieces } = this;
    const first = pieces[0];
    if (pieces.length === 1) return name === first;
    const last = pieces[pieces.length - 1];
    if (name.length < first.length + last.length) return false;
    if (!name.startsWith(first) || !name.endsWith(last)) return false;
    // The middle pieces must fit, in order, between the prefix and the suffix.
    let at = first.length;
    const end = name.length - last.length;
    for (let i = 1; i < pieces.length - 1; i++) {
      const piece = pieces[i];
      if (piece === '') continue;
      const found = name.indexOf(piece, at);
      if (found === -1 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  }
}

/** One configured upstream provider, with its credentials loaded. */
export class Upstream {
  readonly name: string;
  readonly priority: number;
  /** Position in the configuration: breaks priority ties, so the file's order is the fallback order. */
  readonly order: number;
  readonly timeoutMs: number;
  readonly limits: UpstreamConfig['limits'];
  readonly baseUrl: URL;
  private readonly patterns: ModelPattern[];
  private readonly aliases: ReadonlyMap<string, string>;
  // Private fields, so a log line or JSON dump of an Upstream cannot carry a credential.
  readonly #headers: Readonly<Record<string, string>>;
  readonly #secrets: Secret[];

  constructor(config: UpstreamConfig, order: number, apiKey: Secret | null) {
    this.name = config.name;
    this.priority = config.priority;
    this.order = order;
    this.timeoutMs = config.timeoutMs;
    this.limits = config.limits;
    this.baseUrl = new URL(config.baseUrl);
    this.patterns = config.models.map((pattern) => new ModelPattern(pattern));
    this.aliases = new Map(Object.entries(config.aliases));
    this.#secrets = Object.entries(config.headers)
      .filter(([name, value]) => SECRET_HEADER.test(name) && value.length > 0)
      .map(([, value]) => new Secret(value));
    if (apiKey) this.#secrets.push(apiKey);
    // Lower-cased, so a configured `Authorization` cannot ride along next to the key's.
    const headers = Object.fromEntries(
      Object.entries(config.headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    if (apiKey) headers.authorization = `Bearer ${apiKey.reveal()}`;
    this.#headers = headers;
  }

  /** The configured extra headers plus Authorization: holds credentials, never log it. */
  get headers(): Readonly<Record<string, string>> {
    return this.#headers;
  }

  /** Whether this upstream serves the public model name `model` (directly or through an alias). */
  serves(model: string): boolean {
    return this.aliases.has(model) || this.patterns.some((p) => p.matches(model));
  }

  /** The upstream's own name for a public model name. */
  upstreamModel(model: string): string {
    return this.aliases.get(model) ?? model;
  }

  /**
   * Where a batch endpoint lives on this upstream: the base URL (which carries the version,
   * e.g. .../v1) plus the endpoint without its /v1 prefix. Nothing from a request goes into it.
   */
  url(endpoint: string): URL {
    const url = new URL(this.baseUrl);
    url.pathname = url.pathname.replace(/\/+$/, '') + endpoint.replace(/^\/v1(?=\/)/, '');
    return url;
  }

  /** Removes this upstream's credentials from text that may be logged or returned. */
  redact(text: string): string {
    return this.#secrets.reduce((out, secret) => secret.redact(out), text);
  }
}

/** Reads an upstream's API key once, at start; a key that is configured but missing stops the process. */
function loadApiKey(config: UpstreamConfig, env: NodeJS.ProcessEnv): Secret | null {
  if (config.apiKeyFile) {
    let text: string;
    try {
      text = readFileSync(config.apiKeyFile, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`upstream "${config.name}": cannot read apiKeyFile ${config.apiKeyFile} (${code})`);
    }
    const key = text.trim();
    if (key === '') throw new Error(`upstream "${config.name}": apiKeyFile ${config.apiKeyFile} is empty`);
    return new Secret(key);
  }
  if (config.apiKeyEnv) {
    const key = env[config.apiKeyEnv]?.trim();
    if (!key)
      throw new Error(`upstream "${config.name}": environment variable ${config.apiKeyEnv} is not set`);
    return new Secret(key);
  }
  return null;
}

/** The upstreams in effect (see effectiveUpstreams), with their credentials loaded. */
export function loadUpstreams(config: BargeConfig, env: NodeJS.ProcessEnv): Upstream[] {
  return effectiveUpstreams(config).map(
    (upstream, i) => new Upstream(upstream, i, loadApiKey(upstream, env)),
  );
}
