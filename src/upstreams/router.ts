import { DEFAULT_MODERATION_MODEL, isBatchEndpoint } from '../common/endpoints';
import type { RouteCheck } from './upstream-gateway';
import type { Upstream } from './registry';

export type Route =
  | { ok: true; model: string; candidates: Upstream[] }
  /** `code` as in a batch's errors: the endpoint is wrong (invalid_url) or nothing serves the model. */
  | { ok: false; code: 'invalid_url' | 'model_not_found'; reason: string };

const noModel = (reason: string): Route => ({ ok: false, code: 'model_not_found', reason });

/** The model a request body asks for; moderations may leave it out, like OpenAI's. */
export function requestedModel(endpoint: string, body: Record<string, unknown>): string | null {
  const model = body.model;
  if (typeof model === 'string' && model !== '') return model;
  if (model === undefined && endpoint === '/v1/moderations') return DEFAULT_MODERATION_MODEL;
  return null;
}

/**
 * Static routing: which upstreams may serve a model, best first. Health (circuit breakers)
 * is applied on top of this list per attempt, by the gateway.
 */
export class Router {
  private readonly byName: ReadonlyMap<string, Upstream>;
  private readonly ordered: readonly Upstream[];

  constructor(upstreams: readonly Upstream[]) {
    this.byName = new Map(upstreams.map((u) => [u.name, u]));
    this.ordered = [...upstreams].sort((a, b) => a.priority - b.priority || a.order - b.order);
  }

  route(model: string | null, endpoint: string, provider: string | null): Route {
    if (!isBatchEndpoint(endpoint)) {
      return { ok: false, code: 'invalid_url', reason: `The endpoint '${endpoint}' is not supported.` };
    }
    if (model === null) return noModel('The request does not name a model.');
    if (provider !== null) {
      const pinned = this.byName.get(provider);
      if (!pinned) return noModel(`The provider '${provider}' is not configured.`);
      if (!pinned.serves(model))
        return noModel(`The provider '${provider}' does not serve the model '${model}'.`);
      return { ok: true, model, candidates: [pinned] };
    }
    const candidates = this.ordered.filter((u) => u.serves(model));
    if (candidates.length === 0)
      return noModel(`The model '${model}' is not served by any configured upstream.`);
    return { ok: true, model, candidates };
  }

  check(model: string, endpoint: string, provider: string | null): RouteCheck {
    const route = this.route(model, endpoint, provider);
    if (!route.ok) return { ok: false, reason: route.reason };
    return { ok: true, capacity: route.candidates.reduce((sum, u) => sum + u.limits.maxConcurrency, 0) };
  }

  get upstreams(): readonly Upstream[] {
    return this.ordered;
  }
}
