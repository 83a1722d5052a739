import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { AbortHub, abortError, isAbortError, sleep } from './abort';
import type { PacingOptions } from './adaptive-concurrency';
import { CircuitBreaker, type BreakerPass, type BreakerSettings } from './circuit-breaker';
import { systemClock, type Clock } from './clock';
import {
  HttpUpstream,
  type AnswerMemory,
  type AttemptResponse,
  type UpstreamTransport,
} from './http-upstream';
import { LeaseKeeper } from './lease-keeper';
import { PgLimitStore, type LimitStore } from './limit-store';
import { UpstreamLimiter } from './limiter';
import { createLogger, type Logger } from '../observability/logger';
import { CIRCUIT_STATE, type Metrics, type UpstreamInstruments } from '../observability/metrics';
import { loadUpstreams, type Upstream } from './registry';
import { healthOf, isOverload, RetryPolicy, retryAfterMs, verdictOf } from './retry-policy';
import { requestedModel, routePricing, Router } from './router';
import { ThrottledWarnings } from './throttled-warnings';
import { estimateInputTokens, estimateTokens, outputBound, reportedTokens } from './token-estimate';
import type { RouteCheck, UpstreamCall, UpstreamGateway, UpstreamResult } from './upstream-gateway';

export interface GatewayOptions {
  /** Where the shared limits live: Postgres in production, a fake in unit tests. */
  limitStore: LimitStore;
  clock?: Clock;
  /** Uniform numbers in [0, 1) for backoff jitter. */
  random?: () => number;
  /** Where `apiKeyEnv` variables are read, once, at construction. */
  env?: NodeJS.ProcessEnv;
  /** Replaces the HTTP client (unit tests). */
  transport?: (upstream: Upstream) => UpstreamTransport;
  /** Room for answers being read, shared by every upstream (the default transport's). */
  answerMemory?: AnswerMemory;
  /** Identity of this process in the shared limit tables; unique per gateway by default. */
  workerId?: string;
  /** Overrides of the adaptive pacing parameters (tests). */
  pacing?: Omit<PacingOptions, 'max'>;
  /** The process's metrics; none are made without it. */
  metrics?: Metrics;
  /** The process's logger (a child per upstream carries `upstream`); stdout at info by default. */
  logger?: Logger;
}

/** A fresh identity for one worker process in the shared limit tables (and its Postgres application_name). */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * Code of a result without an HTTP answer, besides the transport's (upstream_connection_error,
 * upstream_timeout, upstream_response_too_large) and the router's (invalid_url, model_not_found).
 */
/** A body that cannot be serialized (e.g. nested past what JSON.stringify can walk). */
export const INVALID_BODY = 'invalid_request_body';

/** One upstream's machinery in this process. */
interface UpstreamRuntime {
  upstream: Upstream;
  breaker: CircuitBreaker;
  limiter: UpstreamLimiter;
  transport: UpstreamTransport;
  instruments: UpstreamInstruments | null;
}

/**
 * The UpstreamGateway: routes each request to an upstream serving its model, waits for a
 * slot within the shared limits, sends it, and retries transient failures with backoff,
 * failing over to the next upstream in routing order (by priority, or by price) when one is
 * down. One instance per worker process; call close() on shutdown.
 */
export class HttpUpstreamGateway implements UpstreamGateway {
  private readonly logger: Logger;
  private readonly warnings: ThrottledWarnings;
  private readonly unwatch: () => void;
  private readonly router: Router;
  private readonly runtimes = new Map<string, UpstreamRuntime>();
  private readonly retry: RetryPolicy;
  private readonly keeper: LeaseKeeper;
  private readonly hub = new AbortHub();
  private readonly clock: Clock;
  private readonly defaultMaxOutputTokens: number;
  private closing: Promise<void> | undefined;

  /** The production wiring: shared limits in Postgres, this process known by `workerId`. */
  static forDatabase(
    config: BargeConfig,
    db: DataSource,
    options: Omit<GatewayOptions, 'limitStore'> & { appName?: string } = {},
  ): HttpUpstreamGateway {
    return new HttpUpstreamGateway(config, {
      ...options,
      limitStore: new PgLimitStore(db, options.appName ?? null),
    });
  }

  constructor(config: BargeConfig, options: GatewayOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createLogger({ name: 'upstreams', level: 'info' });
    this.warnings = new ThrottledWarnings(this.logger, 30_000);
    const upstreams = loadUpstreams(config, options.env ?? process.env);
    this.router = new Router(upstreams, routePricing(config));
    this.defaultMaxOutputTokens = config.pricing.defaultMaxOutputTokens;
    this.retry = new RetryPolicy(config.routing, options.random);
    const store = options.limitStore;
    const workerId = options.workerId ?? newWorkerId();
    const onError = (what: string, error: unknown): void =>
      this.warnings.warn(what, `${what}: ${error instanceof Error ? error.message : String(error)}`);
    this.keeper = new LeaseKeeper(store, workerId, config.routing.leaseRefreshMs, this.clock, (e) =>
      onError('concurrency leases', e),
    );
    const makeTransport = options.transport ?? ((u: Upstream) => new HttpUpstream(u, options.answerMemory));
    const { routing } = config;
    const breakerSettings: BreakerSettings = {
      threshold: routing.breakerThreshold,
      failureRate: routing.breakerFailureRate,
      window: routing.breakerWindow,
      cooldownMs: routing.breakerCooldownMs,
    };
    for (const upstream of upstreams) {
      const log = this.logger.child({ upstream: upstream.name });
      const breaker = new CircuitBreaker(breakerSettings, this.clock, (state, failures) =>
        state === 'open'
          ? log.warn({ failures }, `circuit open after ${failures} failures among its recent attempts`)
          : log.info('circuit closed, upstream healthy again'),
      );
      const limiter = new UpstreamLimiter(upstream, {
        store,
        keeper: this.keeper,
        clock: this.clock,
        onError,
        pacing: options.pacing,
      });
      this.runtimes.set(upstream.name, {
        upstream,
        breaker,
        limiter,
        transport: makeTransport(upstream),
        instruments: options.metrics?.upstream(upstream.name) ?? null,
      });
    }
    this.unwatch = options.metrics?.watchUpstreams(() => this.states()) ?? (() => undefined);
  }

  /** Each upstream's live state, for the gauges (read when Prometheus scrapes). */
  private *states() {
    const now = this.clock.now();
    for (const { upstream, breaker, limiter } of this.runtimes.values()) {
      yield {
        upstream: upstream.name,
        concurrencyLimit: limiter.pacing.limit,
        inFlight: limiter.inFlight,
        queueDepth: limiter.queued,
        leaseShare: limiter.leaseShare(now),
        circuitState: CIRCUIT_STATE[breaker.state],
      };
    }
  }

  checkRoute(model: string, endpoint: string, provider: string | null): RouteCheck {
    return this.router.check(model, endpoint, provider);
  }

  async call(call: UpstreamCall): Promise<UpstreamResult> {
    if (this.closing) throw new Error('the upstream gateway is closed');
    if (call.signal.aborted) throw abortError(call.signal);
    const model = requestedModel(call.endpoint, call.body);
    const route = this.router.route(model, call.endpoint, call.provider, () => ({
      input: estimateInputTokens(call.body),
      output: outputBound(call.endpoint, call.body, this.defaultMaxOutputTokens),
    }));
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
    const send = this.hub.follow(call.signal);
    // Waiting (for a slot, a circuit, a backoff) ends on either signal; a call in flight only on `signal`.
    const wait = call.hold ? this.hub.followWithHold(call.signal, call.hold) : send;
    try {
      return await this.execute(call, route.model, candidates, { send, wait });
    } catch (error) {
      // Aborted by the caller or by close(): the rejection is always an AbortError.
      if (send.aborted) throw abortErrorFrom(error);
      if (call.hold?.aborted && isAbortError(error)) {
        return { kind: 'unanswered', reason: 'held', attempts: this.attemptsOf(error, call) };
      }
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unwatch();
      this.hub.abortAll(new Error('the upstream gateway is closing'));
      for (const runtime of this.runtimes.values()) runtime.limiter.close();
      await this.keeper.close();
      await Promise.all([...this.runtimes.values()].map((r) => r.transport.close()));
    })();
    return this.closing;
  }

  /**
   * Attempts until success, a final answer, or the attempt budget. When the deadline stops it
   * first (no slot in time, or the next attempt would start after it), the call is left
   * unanswered: what a batch has not answered when its window closes becomes batch_expired.
   */
  private async execute(
    call: UpstreamCall,
    model: string,
    candidates: UpstreamRuntime[],
    signals: { send: AbortSignal; wait: AbortSignal },
  ): Promise<UpstreamResult> {
    let attempts = call.attemptsSoFar;
    let failures = 0;
    // Upstreams that failed this request (no answer, or 5xx): the next attempt prefers others.
    const failedOn = new Set<UpstreamRuntime>();
    const tokens = estimateTokens(call.body);
    const unanswered = (): UpstreamResult => ({ kind: 'unanswered', reason: 'deadline', attempts });

    for (;;) {
      // Almost always a circuit lets the request through: no wait, no promise.
      const chosen =
        this.pick(candidates, failedOn) ??
        (await this.choose(candidates, failedOn, call.deadline, signals.wait).catch((error: unknown) => {
          throw withAttempts(error, attempts);
        }));
      if (!chosen) return unanswered();
      const { runtime, pass } = chosen;
      let attempt: AttemptResponse | null;
      try {
        attempt = await this.attempt(runtime, pass, call, model, tokens, signals, attempts > 0);
      } catch (error) {
        if (error instanceof UnserializableBody) {
          return { kind: 'error', code: INVALID_BODY, message: error.message, upstream: null, attempts };
        }
        throw withAttempts(error, attempts);
      }
      if (attempt === null) return unanswered();
      attempts++;

      const result = this.toResult(runtime, attempt, attempts);
      if (verdictOf(attempt) !== 'retry') return result;
      failures++;
      if (healthOf(attempt) === 'unhealthy') failedOn.add(runtime);
      if (attempts >= this.retry.maxAttempts) return result;

      // Failing over to an upstream this request has not failed on needs no backoff:
      // the backoff protects the upstream that failed, not the next one.
      const failover =
        failedOn.has(runtime) && candidates.some((c) => !failedOn.has(c) && c.breaker.available());
      const retryAfter = attempt.kind === 'response' ? retryAfterMs(attempt.headers, this.clock.now()) : null;
      const delay = failover ? 0 : this.retry.delayMs(failures, retryAfter);
      if (this.clock.now() + delay >= call.deadline) return unanswered();
      runtime.instruments?.retried(attempt.kind === 'response' ? attempt.status : attempt.code);
      call.onRetry?.(attempts);
      if (delay > 0) {
        try {
          await sleep(delay, signals.wait);
        } catch (error) {
          throw withAttempts(error, attempts);
        }
      }
    }
  }

  /** Attempts made before a hold stopped the call (carried on the AbortError). */
  private attemptsOf(error: unknown, call: UpstreamCall): number {
    const n = (error as { attempts?: unknown }).attempts;
    return typeof n === 'number' ? n : call.attemptsSoFar;
  }

  /** The first upstream in routing order whose circuit lets the request through now, preferring those it has not failed on. */
  private pick(
    candidates: UpstreamRuntime[],
    failedOn: Set<UpstreamRuntime>,
  ): { runtime: UpstreamRuntime; pass: BreakerPass } | null {
    for (const preferFresh of [true, false]) {
      for (const runtime of candidates) {
        if (preferFresh && failedOn.has(runtime)) continue;
        const pass = runtime.breaker.tryPass();
        if (pass) return { runtime, pass };
      }
    }
    return null;
  }

  /**
   * The upstream for the next attempt: the first in routing order whose circuit lets a request
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
      const picked = this.pick(candidates, failedOn);
      if (picked) return picked;
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
    signals: { send: AbortSignal; wait: AbortSignal },
    retry: boolean,
  ): Promise<AttemptResponse | null> {
    const { upstream, breaker, limiter, transport, instruments } = runtime;
    let outcome: AttemptResponse | null = null;
    try {
      const upstreamModel = upstream.upstreamModel(model);
      const waitStart = this.clock.now();
      const slot = await limiter.acquire(
        {
          tenantId: call.tenantId,
          batchId: call.batchId,
          model: upstreamModel,
          tokens,
          deadline: call.deadline,
        },
        signals.wait,
      );
      if (!slot) return null;
      const sentAt = this.clock.now();
      instruments?.waited((sentAt - waitStart) / 1000);
      // The slot may come late; still, no attempt starts after the deadline or once held.
      if (sentAt >= call.deadline || signals.wait.aborted) {
        slot.release(null);
        if (signals.wait.aborted) throw abortError(signals.wait);
        return null;
      }
      // Serialized only now, for this attempt: the requests waiting for a slot hold their
      // parsed bodies only, not their JSON text as well.
      let body: string;
      try {
        body = upstreamModel === model ? JSON.stringify(call.body) : withModel(call.body, upstreamModel);
      } catch (error) {
        slot.release(null);
        throw new UnserializableBody(error);
      }
      try {
        outcome = await transport.send({
          endpoint: call.endpoint,
          body,
          requestId: call.requestId,
          signal: signals.send,
          apiKey: call.credentials?.get(upstream.name),
        });
        instruments?.attempt(
          call.endpoint,
          outcome.kind === 'response' ? outcome.status : outcome.code,
          (this.clock.now() - sentAt) / 1000,
          outcome.kind === 'response' && outcome.firstByteMs !== undefined
            ? outcome.firstByteMs / 1000
            : undefined,
        );
      } finally {
        slot.release(
          outcome && {
            status: outcome.kind === 'response' ? outcome.status : null,
            tokensUsed: outcome.kind === 'response' ? reportedTokens(outcome.body) : null,
          },
          this.overloadHold(outcome, call.deadline),
        );
      }
      return outcome;
    } finally {
      // Only first attempts tell the upstream's health: retries are the requests that failed
      // already, so near a batch's end they are most of the traffic whatever the upstream's state.
      breaker.record(pass, outcome ? healthOf(outcome) : 'unknown', !retry);
    }
  }

  /**
   * How long a slot that got "too much" (429/503) stays taken: what the upstream asked for
   * (Retry-After, capped) or one backoff step. Without it the slot would go to the next
   * request at once, and refusals could cycle through it as fast as the upstream answers.
   */
  private overloadHold(outcome: AttemptResponse | null, deadline: number): number {
    if (outcome?.kind !== 'response' || !isOverload(outcome.status)) return 0;
    const now = this.clock.now();
    const asked = retryAfterMs(outcome.headers, now) ?? this.retry.baseDelayMs;
    return Math.max(0, Math.min(asked, this.retry.retryAfterCapMs, deadline - now));
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
      text: attempt.text,
      upstreamRequestId: attempt.headers['x-request-id'] ?? null,
      upstream,
      attempts,
    };
  }
}

/** The body as this upstream wants it: `model` renamed when the upstream has an alias for it. */
function withModel(body: Record<string, unknown>, upstreamModel: string): string {
  return JSON.stringify({ ...body, model: upstreamModel });
}

/** A request body JSON.stringify refuses (nested too deep): that request's error, sent nowhere. */
class UnserializableBody extends Error {
  constructor(cause: unknown) {
    super(`The request body could not be serialized: ${(cause as Error).message}.`, { cause });
  }
}

/** Marks an AbortError with the attempts made so far, so a held call reports them. */
function withAttempts(error: unknown, attempts: number): unknown {
  if (isAbortError(error)) (error as Error & { attempts?: number }).attempts = attempts;
  return error;
}

function abortErrorFrom(error: unknown): Error {
  if (error instanceof Error && error.name === 'AbortError') return error;
  const wrapped = new Error('The upstream call was aborted', { cause: error });
  wrapped.name = 'AbortError';
  return wrapped;
}
