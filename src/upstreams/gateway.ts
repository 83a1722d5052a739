import { Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { AbortHub, abortError, sleep } from './abort';
import { CircuitBreaker, type BreakerPass } from './circuit-breaker';
import { systemClock, type Clock } from './clock';
import { HttpUpstream, type AttemptResponse, type UpstreamTransport } from './http-upstream';
import { LeaseKeeper } from './lease-keeper';
import { LimitStore } from './limit-store';
import { UpstreamLimiter } from './limiter';
import { loadUpstreams, type Upstream } from './registry';
import { healthOf, RetryPolicy, retryAfterMs, verdictOf } from './retry-policy';
import { requestedModel, Router } from './router';
import { ThrottledWarnings } from './throttled-warnings';
import { estimateTokens, reportedTokens } from './token-estimate';
import type { RouteCheck, UpstreamCall, UpstreamGateway, UpstreamResult } from './upstream-gateway';

export interface GatewayOptions {
  clock?: Clock;
  /** Uniform numbers in [0, 1) for backoff jitter. */
  random?: () => number;
  /** Where `apiKeyEnv` variables are read, once, at construction. */
  env?: NodeJS.ProcessEnv;
  /** Replaces the HTTP client (unit tests). */
  transport?: (upstream: Upstream) => UpstreamTransport;
  /** Identity of this process in the shared limit tables; unique per gateway by default. */
  workerId?: string;
}

/**
 * Codes of results without an HTTP answer, besides the transport's (upstream_connection_error,
 * upstream_timeout, upstream_response_too_large) and the router's (invalid_url, model_not_found).
 */
export const UNAVAILABLE = 'upstream_unavailable';
export const DEADLINE_EXCEEDED = 'upstream_deadline_exceeded';

/** One upstream's machinery in this process. */
interface UpstreamRuntime {
  upstream: Upstream;
  breaker: CircuitBreaker;
  limiter: UpstreamLimiter;
  transport: UpstreamTransport;
}

/**
 * The UpstreamGateway: routes each request to an upstream serving its model, waits for a
 * slot within the shared limits, sends it, and retries transient failures with backoff,
 * failing over to the next upstream (by priority) when one is down. One instance per worker
 * process; call close() on shutdown.
 */
export class HttpUpstreamGateway implements UpstreamGateway {
  private readonly logger = new Logger('upstreams');
  private readonly warnings = new ThrottledWarnings(this.logger, 30_000);
  private readonly router: Router;
  private readonly runtimes = new Map<string, UpstreamRuntime>();
  private readonly retry: RetryPolicy;
  private readonly keeper: LeaseKeeper;
  private readonly hub = new AbortHub();
  private readonly clock: Clock;
  private closing: Promise<void> | undefined;

  constructor(config: BargeConfig, db: DataSource, options: GatewayOptions = {}) {
    this.clock = options.clock ?? systemClock;
    const upstreams = loadUpstreams(config, options.env ?? process.env);
    this.router = new Router(upstreams);
    this.retry = new RetryPolicy(config.routing, options.random);
    const store = new LimitStore(db);
    const workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    const onError = (what: string, error: unknown): void =>
      this.warnings.warn(what, `${what}: ${error instanceof Error ? error.message : String(error)}`);
    this.keeper = new LeaseKeeper(store, workerId, config.routing.leaseRefreshMs, this.clock, (e) =>
      onError('concurrency leases', e),
    );
    const makeTransport = options.transport ?? ((u: Upstream) => new HttpUpstream(u));
    for (const upstream of upstreams) {
      const breaker = new CircuitBreaker(
        config.routing.breakerThreshold,
        config.routing.breakerCooldownMs,
        this.clock,
        (state, failures) =>
          state === 'open'
            ? this.logger.warn(
                `upstream ${upstream.name}: circuit open after ${failures} consecutive failures`,
              )
            : this.logger.log(`upstream ${upstream.name}: circuit closed, upstream healthy again`),
      );
      const limiter = new UpstreamLimiter(upstream, {
        store,
        keeper: this.keeper,
        clock: this.clock,
        onError,
      });
      this.runtimes.set(upstream.name, { upstream, breaker, limiter, transport: makeTransport(upstream) });
    }
  }

  checkRoute(model: string, endpoint: string, provider: string | null): RouteCheck {
    return this.router.check(model, endpoint, provider);
  }

  async call(call: UpstreamCall): Promise<UpstreamResult> {
    if (this.closing) throw new Error('the upstream gateway is closed');
    if (call.signal.aborted) throw abortError(call.signal);
    const model = requestedModel(call.endpoint, call.body);
    const route = this.router.route(model, call.endpoint, call.provider);
    if (!route.ok) {
      return {
        kind: 'error',
        code: route.code,
        message: route.reason,
        upstream: null,
        attempts: call.attemptsSoFar,
      };
    }
    const candidates = route.candidates.map((u) => this.runtimes.get(u.name)!);
    const link = this.hub.link(call.signal);
    try {
      return await this.execute(call, route.model, candidates, link.signal);
    } catch (error) {
      // Aborted by the caller or by close(): the rejection is always an AbortError.
      if (link.signal.aborted) throw abortErrorFrom(error);
      throw error;
    } finally {
      link.dispose();
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.hub.abortAll(new Error('the upstream gateway is closing'));
      for (const runtime of this.runtimes.values()) runtime.limiter.close();
      await this.keeper.close();
      await Promise.all([...this.runtimes.values()].map((r) => r.transport.close()));
    })();
    return this.closing;
  }

  /** Attempts until success, a final answer, the attempt budget or the deadline. */
  private async execute(
    call: UpstreamCall,
    model: string,
    candidates: UpstreamRuntime[],
    signal: AbortSignal,
  ): Promise<UpstreamResult> {
    let attempts = call.attemptsSoFar;
    let failures = 0;
    // What the call returns when it runs out of attempts or time: its last failure.
    let last: UpstreamResult | null = null;
    // Upstreams that failed this request (no answer, or 5xx): the next attempt prefers others.
    const failedOn = new Set<UpstreamRuntime>();
    const tokens = estimateTokens(call.body);

    for (;;) {
      const chosen = await this.choose(candidates, failedOn, call.deadline, signal);
      if (!chosen) return last ?? this.unavailable(model, candidates, attempts);
      const { runtime, pass } = chosen;
      const attempt = await this.attempt(runtime, pass, call, model, tokens, signal);
      if (attempt === null) return last ?? this.deadlineExceeded(runtime, attempts);
      attempts++;

      const result = this.toResult(runtime, attempt, attempts);
      if (verdictOf(attempt) !== 'retry') return result;
      failures++;
      last = result;
      if (healthOf(attempt) === 'unhealthy') failedOn.add(runtime);
      if (attempts >= this.retry.maxAttempts) return result;

      // Failing over to an upstream this request has not failed on needs no backoff:
      // the backoff protects the upstream that failed, not the next one.
      const failover =
        failedOn.has(runtime) && candidates.some((c) => !failedOn.has(c) && c.breaker.available());
      const retryAfter = attempt.kind === 'response' ? retryAfterMs(attempt.headers, this.clock.now()) : null;
      const delay = failover ? 0 : this.retry.delayMs(failures, retryAfter);
      if (this.clock.now() + delay >= call.deadline) return result;
      call.onRetry?.(attempts);
      if (delay > 0) await sleep(delay, signal);
    }
  }

  /**
   * The upstream for the next attempt: the first by priority whose circuit lets a request
   * through, preferring those this request has not failed on. When every circuit is open,
   * waits for the first to half-open; null if the deadline comes first.
   */
  private async choose(
    candidates: UpstreamRuntime[],
    failedOn: Set<UpstreamRuntime>,
    deadline: number,
    signal: AbortSignal,
  ): Promise<{ runtime: UpstreamRuntime; pass: BreakerPass } | null> {
    for (;;) {
      for (const preferFresh of [true, false]) {
        for (const runtime of candidates) {
          if (preferFresh && failedOn.has(runtime)) continue;
          const pass = runtime.breaker.tryPass();
          if (pass) return { runtime, pass };
        }
      }
      const now = this.clock.now();
      const next = Math.min(...candidates.map((c) => c.breaker.retryAt()));
      if (next >= deadline || now >= deadline) return null;
      await sleep(Math.max(1, next - now), signal);
    }
  }

  /** One attempt on one upstream, within its limits; null if the deadline passed first. */
  private async attempt(
    runtime: UpstreamRuntime,
    pass: BreakerPass,
    call: UpstreamCall,
    model: string,
    tokens: number,
    signal: AbortSignal,
  ): Promise<AttemptResponse | null> {
    const { upstream, breaker, limiter, transport } = runtime;
    let outcome: AttemptResponse | null = null;
    try {
      const upstreamModel = upstream.upstreamModel(model);
      const slot = await limiter.acquire(
        {
          tenantId: call.tenantId,
          batchId: call.batchId,
          model: upstreamModel,
          tokens,
          deadline: call.deadline,
        },
        signal,
      );
      if (!slot) return null;
      const sentAt = this.clock.now();
      // The slot may come late; still, no attempt starts after the deadline.
      if (sentAt >= call.deadline) {
        slot.release(null);
        return null;
      }
      try {
        outcome = await transport.send({
          endpoint: call.endpoint,
          body: JSON.stringify(withModel(call.body, model, upstreamModel)),
          requestId: call.requestId,
          signal,
        });
      } finally {
        slot.release(
          outcome && {
            status: outcome.kind === 'response' ? outcome.status : null,
            tokensUsed: outcome.kind === 'response' ? reportedTokens(outcome.body) : null,
          },
        );
      }
      return outcome;
    } finally {
      breaker.record(pass, outcome ? healthOf(outcome) : 'unknown');
    }
  }

  private toResult(runtime: UpstreamRuntime, attempt: AttemptResponse, attempts: number): UpstreamResult {
    const upstream = runtime.upstream.name;
    if (attempt.kind === 'no-answer') {
      return { kind: 'error', code: attempt.code, message: attempt.message, upstream, attempts };
    }
    return {
      kind: 'http',
      status: attempt.status,
      body: attempt.body,
      upstreamRequestId: attempt.headers['x-request-id'] ?? null,
      upstream,
      attempts,
    };
  }

  private unavailable(model: string, candidates: UpstreamRuntime[], attempts: number): UpstreamResult {
    const names = candidates.map((c) => c.upstream.name).join(', ');
    return {
      kind: 'error',
      code: UNAVAILABLE,
      message: `No upstream serving the model '${model}' was available before the deadline (circuit open: ${names}).`,
      upstream: null,
      attempts,
    };
  }

  private deadlineExceeded(runtime: UpstreamRuntime, attempts: number): UpstreamResult {
    return {
      kind: 'error',
      code: DEADLINE_EXCEEDED,
      message: `The request was still waiting for capacity on upstream ${runtime.upstream.name} at its deadline.`,
      upstream: runtime.upstream.name,
      attempts,
    };
  }
}

/** The body as this upstream wants it: `model` renamed when the upstream has an alias for it. */
function withModel(
  body: Record<string, unknown>,
  model: string,
  upstreamModel: string,
): Record<string, unknown> {
  return upstreamModel === model ? body : { ...body, model: upstreamModel };
}

function abortErrorFrom(error: unknown): Error {
  if (error instanceof Error && error.name === 'AbortError') return error;
  const wrapped = new Error('The upstream call was aborted', { cause: error });
  wrapped.name = 'AbortError';
  return wrapped;
}
