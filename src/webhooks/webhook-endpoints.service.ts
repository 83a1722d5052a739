import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { newId } from '../common/ids';
import { conflict, invalidRequest, notFound, OpenAIError } from '../common/openai-error';
import { toListObject, type PageQuery } from '../common/pagination';
import { SecretBox } from '../common/secret-box';
import { echo } from '../common/text';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { secretContext, WebhookDeliveries } from './delivery';
import { ReceiverPolicy, ReceiverRefused } from './receiver-policy';
import { systemResolver, WebhookSender } from './sender';
import { newSigningSecret, secretHint } from './signature';
import { WebhookRepository, type WebhookAttempt, type WebhookEndpoint } from './webhook.repository';
import { parseCreateEndpoint, parseRotate, parseTest, parseUpdateEndpoint } from './webhook-endpoint.request';

/** How long a rotated-out secret keeps signing when the client asks to keep it. */
export const PREVIOUS_SECRET_GRACE_MS = 24 * 3600_000;

const seconds = (d: Date | null): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

/** The endpoint as the API shows it: the secret itself only right after create and rotate. */
export function presentEndpoint(e: WebhookEndpoint, secret?: string) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    name: e.name,
    event_types: e.eventTypes,
    payload: e.payload,
    status: e.status,
    disabled_reason: e.disabledReason,
    disabled_at: seconds(e.disabledAt),
    ...(secret !== undefined && { secret }),
    secret_hint: e.secretHint,
    previous_secret_expires_at:
      e.previousSecretExpiresAt && e.previousSecretExpiresAt.getTime() > Date.now()
        ? seconds(e.previousSecretExpiresAt)
        : null,
    last_delivered_at: seconds(e.lastSuccessAt),
    created_at: seconds(e.createdAt)!,
  };
}

export function presentAttempt(a: WebhookAttempt) {
  return {
    id: a.id,
    object: 'webhook_delivery' as const,
    event_id: a.eventId,
    event_type: a.eventType,
    attempt: a.attempt,
    status: a.status,
    response_status_code: a.responseStatus,
    response_body: a.responseBody,
    error: a.error,
    duration_ms: a.durationMs,
    next_attempt_at: seconds(a.nextAttemptAt),
    test: a.test,
    created_at: seconds(a.createdAt)!,
  };
}

const unavailable = () =>
  new OpenAIError(
    503,
    'Webhooks are not configured on this server: its operator must set secrets.encryptionKey (BARGE_SECRETS_ENCRYPTION_KEY).',
    'server_error',
    null,
    'webhooks_not_configured',
    { 'x-should-retry': 'false' },
  );

const endpointNotFound = (id: string) =>
  notFound(`No such webhook endpoint: ${echo(id)}`, 'webhook_endpoint_id');

/** The /v1/webhook_endpoints API: a tenant's receivers, their secrets, tests and delivery log. */
@Injectable()
export class WebhookEndpointsService {
  private readonly repo: WebhookRepository;
  private readonly box: SecretBox | null;
  private readonly policy: ReceiverPolicy;
  private readonly delivery: WebhookDeliveries;

  constructor(
    @Inject(CONFIG) private readonly config: BargeConfig,
    db: DataSource,
  ) {
    this.repo = new WebhookRepository(db);
    this.box = SecretBox.fromConfig(config.secrets);
    this.policy = new ReceiverPolicy(config.webhooks);
    const sender = new WebhookSender(this.policy, { timeoutMs: config.webhooks.timeoutMs });
    this.delivery = new WebhookDeliveries(this.repo, this.box, sender);
  }

  async create(tenantId: string, body: unknown) {
    const box = this.requireBox();
    const request = parseCreateEndpoint(body);
    await this.checkReceiver(request.url);
    if ((await this.repo.countEndpoints(tenantId)) >= this.config.webhooks.maxEndpointsPerTenant) {
      throw conflict(
        `A tenant may have at most ${this.config.webhooks.maxEndpointsPerTenant} webhook endpoints; delete one first.`,
        'too_many_webhook_endpoints',
      );
    }
    const id = newId('wh_');
    const secret = newSigningSecret();
    const now = new Date();
    const endpoint: WebhookEndpoint = {
      id,
      tenantId,
      url: request.url,
      name: request.name,
      eventTypes: request.eventTypes,
      payload: request.payload,
      status: 'enabled',
      disabledReason: null,
      disabledAt: null,
      secretSealed: box.seal(secret, secretContext(id)),
      secretHint: secretHint(secret),
      previousSecretSealed: null,
      previousSecretExpiresAt: null,
      lastSuccessAt: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.repo.insertEndpoint(endpoint);
    return presentEndpoint(endpoint, secret);
  }

  async list(tenantId: string, page: PageQuery) {
    return toListObject(await this.repo.listEndpoints(tenantId, page), (e) => presentEndpoint(e));
  }

  async get(tenantId: string, id: string) {
    return presentEndpoint(await this.find(tenantId, id));
  }

  async update(tenantId: string, id: string, body: unknown) {
    const changes = parseUpdateEndpoint(body);
    await this.find(tenantId, id);
    if (changes.url !== undefined) await this.checkReceiver(changes.url);
    const updated = await this.repo.updateEndpoint(tenantId, id, changes);
    if (!updated) throw endpointNotFound(id);
    return presentEndpoint(updated);
  }

  async delete(tenantId: string, id: string) {
    if (!(await this.repo.deleteEndpoint(tenantId, id))) throw endpointNotFound(id);
    return { id, object: 'webhook_endpoint' as const, deleted: true };
  }

  async rotateSecret(tenantId: string, id: string, body: unknown) {
    const box = this.requireBox();
    const { keepPrevious } = parseRotate(body);
    await this.find(tenantId, id);
    const secret = newSigningSecret();
    const rotated = await this.repo.rotateSecret(
      tenantId,
      id,
      { sealed: box.seal(secret, secretContext(id)), hint: secretHint(secret) },
      keepPrevious ? new Date(Date.now() + PREVIOUS_SECRET_GRACE_MS) : null,
    );
    if (!rotated) throw endpointNotFound(id);
    return presentEndpoint(rotated, secret);
  }

  /** Sends a test event at once and reports what the receiver answered. */
  async test(tenantId: string, id: string, body: unknown) {
    this.requireBox();
    const endpoint = await this.find(tenantId, id);
    const type = parseTest(body, endpoint.eventTypes);
    const result = await this.delivery.sendTest(endpoint, type);
    return {
      object: 'webhook_endpoint.test_result' as const,
      webhook_endpoint_id: endpoint.id,
      event_id: result.eventId,
      event_type: type,
      ok: result.ok,
      response_status_code: result.status,
      response_body: result.body,
      error: result.error,
      duration_ms: result.durationMs,
    };
  }

  async deliveries(tenantId: string, id: string, page: PageQuery, eventId?: string) {
    await this.find(tenantId, id);
    return toListObject(await this.repo.listAttempts(tenantId, id, page, eventId), presentAttempt);
  }

  /** The receiver policy at create/update time: the form, then every address the host has now. */
  private async checkReceiver(raw: string): Promise<void> {
    try {
      await this.policy.resolve(this.policy.parse(raw), systemResolver);
    } catch (err) {
      if (err instanceof ReceiverRefused) throw invalidRequest(err.message, 'url', 'invalid_url');
      throw err;
    }
  }

  private requireBox(): SecretBox {
    if (!this.box) throw unavailable();
    return this.box;
  }

  private async find(tenantId: string, id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.repo.endpoint(id, tenantId);
    if (!endpoint) throw endpointNotFound(id);
    return endpoint;
  }
}
