import type { BargeConfig, RoutingStrategy } from '../config/config';
import { ModelPattern } from './registry';

/** What a model costs on one upstream: list prices in USD per 1M tokens, and the batch discount. */
export interface Price {
  input: number;
  output: number;
  /** Share taken off the list price (0.5: half price). */
  batchDiscount: number;
}

/** Token counts a cost is computed from. */
export interface TokenCounts {
  input: number;
  output: number;
}

interface Entry {
  pattern: ModelPattern;
  upstream: string | undefined;
  price: Price;
}

/**
 * The configured prices (`pricing.models`), looked up by the batch's model and the upstream
 * that serves it: the first entry for that upstream whose pattern matches, else the first
 * entry without an upstream that matches, else none. A model without a price has no cost:
 * callers say so rather than invent one.
 */
export class PriceBook {
  private readonly entries: Entry[];

  constructor(pricing: BargeConfig['pricing']) {
    this.entries = pricing.models.map((m) => ({
      pattern: new ModelPattern(m.model),
      upstream: m.upstream,
      price: { input: m.input, output: m.output, batchDiscount: m.batchDiscount ?? pricing.batchDiscount },
    }));
  }

  /** The price of `model` on `upstream` (null: the upstream is not known, only generic entries apply). */
  price(model: string, upstream: string | null): Price | null {
    const own =
      upstream === null
        ? undefined
        : this.entries.find((e) => e.upstream === upstream && e.pattern.matches(model));
    return (
      (own ?? this.entries.find((e) => e.upstream === undefined && e.pattern.matches(model)))?.price ?? null
    );
  }
}

/** USD for these tokens at this price, the batch discount taken off. */
export function costOf(price: Price, tokens: TokenCounts): number {
  const list = (tokens.input * price.input + tokens.output * price.output) / 1_000_000;
  return list * (1 - price.batchDiscount);
}

/**
 * A dollar figure as answered: rounded to a billionth of a dollar, so sums of the same
 * tokens agree whatever order floating point added them in.
 */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

/** A model's routing strategy: the first `routing.models` entry matching it, else `routing.strategy`. */
export function strategies(routing: BargeConfig['routing']): (model: string) => RoutingStrategy {
  const rules = routing.models.map((m) => ({ pattern: new ModelPattern(m.model), strategy: m.strategy }));
  return (model) => rules.find((r) => r.pattern.matches(model))?.strategy ?? routing.strategy;
}
