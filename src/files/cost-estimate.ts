import type { Readable } from 'node:stream';
import { validateLine } from '../batches/validate/input-validation';
import { isBlank, jsonlLines, LineTooLongError } from '../batches/validate/jsonl-lines';
import type { BatchEndpoint } from '../common/endpoints';
import { invalidRequest } from '../common/openai-error';
import {
  costObject,
  priceObject,
  sumCosts,
  type CostObject,
  type PriceBook,
  type PriceObject,
} from '../upstreams/prices';
import type { Router } from '../upstreams/router';
import { estimateInputTokens, outputBound, outputBudget } from '../upstreams/token-estimate';

/**
 * What a batch over an input file would cost, before it is created: the file streamed once
 * (never held whole), each line checked as validation checks it (validateLine), its input
 * tokens estimated as validation and the gateway estimate them, its output bounded by its own
 * max_tokens (or the configured default), and each model priced at the upstream routing would
 * send it to first. Lines validation would refuse are counted apart, not priced.
 */

export interface ModelEstimate {
  model: string;
  requests: number;
  input_tokens: number;
  /** The most output the requests may cost: their budgets, the default for those without one. */
  max_output_tokens: number;
  /** Requests without max_tokens (or the like), bounded by default_max_output_tokens. */
  requests_without_max_tokens: number;
  /** The upstream routing would try first (null: none serves the model). */
  upstream: string | null;
  price: PriceObject | null;
  /** At most this much: the estimated input and the output bound at `price`, the batch discount off. */
  cost: CostObject;
}

export interface CostEstimate {
  object: 'file.cost_estimate';
  file_id: string;
  endpoint: BatchEndpoint;
  requests: number;
  /** Lines validation would refuse (not counted above, not priced). */
  invalid_requests: number;
  input_tokens: number;
  max_output_tokens: number;
  default_max_output_tokens: number;
  cost: CostObject;
  by_model: ModelEstimate[];
}

interface Tally {
  requests: number;
  input: number;
  output: number;
  unbounded: number;
}

export class CostEstimator {
  constructor(
    private readonly router: Router,
    private readonly prices: PriceBook,
    private readonly defaultMaxOutputTokens: number,
  ) {}

  async estimate(fileId: string, endpoint: BatchEndpoint, source: Readable): Promise<CostEstimate> {
    const byModel = new Map<string, Tally>();
    let invalid = 0;
    try {
      for await (const line of jsonlLines(source)) {
        if (isBlank(line.bytes)) continue;
        const checked = validateLine(line.bytes.toString('utf8'), line.line, endpoint);
        if ('error' in checked) {
          invalid++;
          continue;
        }
        const { model, body } = checked.request;
        let tally = byModel.get(model);
        if (!tally) byModel.set(model, (tally = { requests: 0, input: 0, output: 0, unbounded: 0 }));
        tally.requests++;
        tally.input += estimateInputTokens(body);
        tally.output += outputBound(endpoint, body, this.defaultMaxOutputTokens);
        // No budget of its own, on an endpoint that generates text: the default bounds it.
        if (outputBudget(body) === null && outputBound(endpoint, body, 1) > 0) tally.unbounded++;
      }
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      throw invalidRequest(`The file cannot be estimated: ${error.message}`, 'id', 'line_too_large');
    } finally {
      source.destroy();
    }
    const models = [...byModel.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([model, tally]) => this.price(model, endpoint, tally));
    return {
      object: 'file.cost_estimate',
      file_id: fileId,
      endpoint,
      requests: models.reduce((n, m) => n + m.requests, 0),
      invalid_requests: invalid,
      input_tokens: models.reduce((n, m) => n + m.input_tokens, 0),
      max_output_tokens: models.reduce((n, m) => n + m.max_output_tokens, 0),
      default_max_output_tokens: this.defaultMaxOutputTokens,
      cost: sumCosts(models.map((m) => m.cost)),
      by_model: models,
    };
  }

  private price(model: string, endpoint: BatchEndpoint, tally: Tally): ModelEstimate {
    const tokens = { input: tally.input, output: tally.output };
    const route = this.router.route(model, endpoint, null, () => tokens);
    const upstream = route.ok ? route.candidates[0].name : null;
    const price = upstream === null ? null : this.prices.price(model, upstream);
    return {
      model,
      requests: tally.requests,
      input_tokens: tally.input,
      max_output_tokens: tally.output,
      requests_without_max_tokens: tally.unbounded,
      upstream,
      price: priceObject(price),
      cost: costObject(model, price, tokens),
    };
  }
}
