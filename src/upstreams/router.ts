import { DEFAULT_MODERATION_MODEL, isBatchEndpoint } from '../common/endpoints';
import type { BargeConfig, RoutingStrategy } from '../config/config';
import { costOf, PriceBook, strategies, type TokenCounts } from './prices';
import { effectiveUpstreams } from './provider-names';
import type { RouteCheck } from './upstream-gateway';
import { Upstream } from './registry';

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

/** Prices and per-model strategies, for `cheapest` routing; without them every model routes by priority. */
export interface RoutePricing {
  prices: PriceBook;
  strategyOf: (model: string) => RoutingStrategy;
}

/** The configured prices and strategies, as the router uses them. */
export function routePricing(config: BargeConfig): RoutePricing {
  return { prices: new PriceBook(config.pricing), strategyOf: strategies(config.routing) };
}

/**
 * The gateway's routing without its credentials (no API key is read): where a request would
 * go, for the API's cost estimates.
 */
export function routerWithoutCredentials(config: BargeConfig): Router {
  return new Router(
    effectiveUpstreams(config).map((u, i) => new Upstream(u, i, null)),
    routePricing(config),
  );
}

/** A request's size when nothing better is known: orders upstreams by their input plus output price. */
const UNIT_TOKENS: TokenCounts = { input: 1, output: 1 };

/**
 * Static routing: which upstreams may serve a model, best first. Health (circuit breakers)
 * is applied on top of this list per attempt, by the gateway, so the first healthy one in it
 * is tried and the others are the fallbacks, whichever the strategy.
 */
export class Router {
  private readonly byName: ReadonlyMap<string, Upstream>;
  private readonly ordered: readonly Upstream[];

  constructor(
    upstreams: readonly Upstream[],
    private readonly pricing: RoutePricing | null = null,
  ) {
    this.byName = new Map(upstreams.map((u) => [u.name, u]));
    this.ordered = [...upstreams].sort((a, b) => a.priority - b.priority || a.order - b.order);
  }

  /**
   * `tokens`, the request's estimated size, weighs input against output prices when the model
   * routes `cheapest` (asked for only then).
   */
  route(
    model: string | null,
    endpoint: string,
    provider: string | null,
    tokens: () => TokenCounts = () => UNIT_TOKENS,
  ): Route {
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
    return { ok: true, model, candidates: this.byStrategy(model, candidates, tokens) };
  }

  /**
   * `cheapest`: by the request's cost on each upstream, the priority order breaking ties
   * (the sort is stable); upstreams without a price for the model come after the priced ones,
   * in priority order. `priority`: as they are.
   */
  private byStrategy(model: string, candidates: Upstream[], size: () => TokenCounts): Upstream[] {
    const { pricing } = this;
    if (!pricing || candidates.length < 2 || pricing.strategyOf(model) !== 'cheapest') return candidates;
    const tokens = size();
    const cost = new Map(
      candidates.map((u) => {
        const price = pricing.prices.price(model, u.name);
        return [u, price ? costOf(price, tokens) : Infinity];
      }),
    );
    return [...candidates].sort((a, b) => {
      const ca = cost.get(a)!;
      const cb = cost.get(b)!;
      return ca === cb ? 0 : ca < cb ? -1 : 1;
    });
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
