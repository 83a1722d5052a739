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
export function strategies(
  routing: Pick<BargeConfig['routing'], 'strategy' | 'models'>,
): (model: string) => RoutingStrategy {
  const rules = routing.models.map((m) => ({ pattern: new ModelPattern(m.model), strategy: m.strategy }));
  return (model) => rules.find((r) => r.pattern.matches(model))?.strategy ?? routing.strategy;
}

/** A price as the API answers it (usage per upstream, cost estimates). */
export interface PriceObject {
  input_per_1m_tokens: number;
  output_per_1m_tokens: number;
  batch_discount: number;
  currency: 'usd';
}

export function priceObject(price: Price | null): PriceObject | null {
  return (
    price && {
      input_per_1m_tokens: price.input,
      output_per_1m_tokens: price.output,
      batch_discount: price.batchDiscount,
      currency: 'usd',
    }
  );
}

/** A cost as the API answers it. */
export interface CostObject {
  /** USD, the batch discount taken off; null when some of the tokens have no price. */
  value: number | null;
  currency: 'usd';
  /** Models with tokens but no price (on the upstream that served them): why `value` is null. */
  unpriced_models: string[];
}

/** Tokens of one model on one upstream (null: not known), the parts a cost is the sum of. */
export interface PricedPart {
  model: string | null;
  upstream: string | null;
  input: number;
  output: number;
}

/** The cost of these tokens of `model` at `price`; none (the model named) without a price. */
export function costObject(model: string | null, price: Price | null, tokens: TokenCounts): CostObject {
  if (tokens.input === 0 && tokens.output === 0) return { value: 0, currency: 'usd', unpriced_models: [] };
  if (!price) return { value: null, currency: 'usd', unpriced_models: [model ?? ''] };
  return { value: roundUsd(costOf(price, tokens)), currency: 'usd', unpriced_models: [] };
}

/** Costs added up: null as soon as one part has no price, every unpriced model named once. */
export function sumCosts(costs: Iterable<CostObject>): CostObject {
  let value = 0;
  const unpriced = new Set<string>();
  for (const cost of costs) {
    if (cost.value === null) for (const model of cost.unpriced_models) unpriced.add(model);
    else value += cost.value;
  }
  return {
    value: unpriced.size > 0 ? null : roundUsd(value),
    currency: 'usd',
    unpriced_models: [...unpriced].sort(),
  };
}

/** The cost of every part at its upstream's price; null (and the models named) when one has none. */
export function costOfParts(prices: PriceBook, parts: Iterable<PricedPart>): CostObject {
  return sumCosts(
    [...parts].map((part) =>
      costObject(part.model, part.model === null ? null : prices.price(part.model, part.upstream), part),
    ),
  );
}
