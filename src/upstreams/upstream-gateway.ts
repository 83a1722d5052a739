import type { Secret } from './secret';

/**
 * The contract between batch execution and upstream model providers. The batch activities
 * only ever talk to an UpstreamGateway; routing, fallbacks, rate limits and retries live
 * behind it (src/upstreams/).
 */

export interface UpstreamCall {
  /** Stable across retries and worker restarts (`${batchId}:${line}`); sent as x-barge-request-id. */
  requestId: string;
  batchId: string;
  tenantId: string;
  /** The batch endpoint, e.g. '/v1/chat/completions'. */
  endpoint: string;
  /** The request body from the input line, `model` included. */
  body: Record<string, unknown>;
  /** Upstream pinned by the batch (provider header or metadata), if any. */
  provider: string | null;
  /**
   * The tenant's own keys, by upstream name (src/tenants/provider-keys.ts): an attempt on an
   * upstream listed here is sent with that key instead of the operator's; one on any other
   * upstream with the operator's. A key never goes to an upstream it is not listed for.
   */
  credentials?: ReadonlyMap<string, Secret>;
  /** Epoch ms: no attempt starts after this (the batch's expiry). */
  deadline: number;
  /** Attempts already made in earlier runs of this request (retries survive worker restarts). */
  attemptsSoFar: number;
  /** Aborts everything at once, the call in flight included (the batch is cancelled or expired). */
  signal: AbortSignal;
  /**
   * Stops the call before it is sent (while it waits for a slot, a circuit, or its next
   * attempt), leaving a call already in flight to finish: it then answers `unanswered`. A
   * chunk holds its calls while it cannot record answers, and when it hands over its work.
   */
  hold?: AbortSignal;
  /** Called after each failed attempt that will be retried, so callers can checkpoint. */
  onRetry?: (attempts: number) => void;
}

/** The final outcome of one request, after retries and fallbacks. */
export type UpstreamResult =
  | {
      kind: 'http';
      /** HTTP status of the last attempt: 2xx goes to the output file, anything else to the error file. */
      status: number;
      body: unknown;
      /** The answer's text as received (credentials redacted); `body` is it parsed. */
      text: string;
      /** The upstream's x-request-id, when it sent one. */
      upstreamRequestId: string | null;
      upstream: string;
      attempts: number;
    }
  | {
      /** No HTTP answer at all (connection refused, reset, timeout): error-file line with response null. */
      kind: 'error';
      code: string;
      message: string;
      upstream: string | null;
      attempts: number;
    }
  | {
      /**
       * No final outcome: the call was held before its next attempt, or the deadline came
       * first (still waiting for capacity, or its next attempt would start after it). Nothing
       * is recorded: the request is left for a later attempt, or becomes batch_expired.
       */
      kind: 'unanswered';
      reason: 'held' | 'deadline';
      attempts: number;
    };

export interface RouteCheck {
  ok: boolean;
  /** When not ok: why, in words for the batch's `errors` (e.g. no upstream serves the model). */
  reason?: string;
  /** When ok: requests the upstreams serving it may have in flight in all (sizes a batch's window). */
  capacity?: number;
}

export interface UpstreamGateway {
  /** Whether some configured upstream can serve `model` for `endpoint` (validation uses it). */
  checkRoute(model: string, endpoint: string, provider: string | null): RouteCheck;
  /** Sends one request with routing, limits, retries and fallbacks; rejects only when `signal` aborts. */
  call(call: UpstreamCall): Promise<UpstreamResult>;
  close(): Promise<void>;
}
