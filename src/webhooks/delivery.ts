import { newId } from '../common/ids';
import type { SecretBox } from '../common/secret-box';
import { eventBody, type StoredEvent } from './events';
import type { WebhookSender, SendResult } from './sender';
import { signedHeaders } from './signature';
import type { WebhookAttempt, WebhookEndpoint, WebhookRepository } from './webhook.repository';

/**
 * Delivering events to endpoints, as plain code: one attempt (sign, send, record), the end of
 * a delivery that was given up (which disables an endpoint nothing reached meanwhile), and
 * the API's test event. The Temporal activities (activities/webhook.activity.ts) and the API
 * call this; the retry schedule lives in the delivery workflow.
 */

/** Binds a sealed secret to its endpoint (SecretBox context). */
export const secretContext = (endpointId: string) => `webhook_endpoint:${endpointId}`;

export interface AttemptRequest {
  eventId: string;
  endpointId: string;
  /** 1-based. */
  attempt: number;
  /** When this attempt fails, the next one follows after this long; null: it is the last. */
  retryInMs: number | null;
}

export type AttemptOutcome =
  | { outcome: 'delivered'; status: number }
  | { outcome: 'failed'; status: number | null; error: string | null }
  /** The endpoint or the event is gone, or the endpoint is disabled: no more attempts. */
  | { outcome: 'stopped'; reason: string };

export class WebhookSecretsUnavailable extends Error {
  constructor() {
    super('webhook secrets cannot be read: secrets.encryptionKey (BARGE_SECRETS_ENCRYPTION_KEY) is not set');
  }
}

export class WebhookDeliveries {
  constructor(
    private readonly repo: WebhookRepository,
    private readonly box: SecretBox | null,
    private readonly sender: WebhookSender,
    private readonly now: () => Date = () => new Date(),
  ) {}

  targets(eventId: string): Promise<string[]> {
    return this.repo.targets(eventId);
  }

  async attempt(request: AttemptRequest): Promise<AttemptOutcome> {
    const [event, endpoint] = await Promise.all([
      this.repo.event(request.eventId),
      this.repo.endpoint(request.endpointId, null),
    ]);
    if (!event) return { outcome: 'stopped', reason: 'the event is gone' };
    if (!endpoint) return { outcome: 'stopped', reason: 'the endpoint was deleted' };
    if (endpoint.status === 'disabled') {
      await this.record(endpoint, event, request.attempt, {
        status: 'skipped',
        error: `not sent: the endpoint is disabled (${endpoint.disabledReason ?? 'no reason given'})`,
      });
      return { outcome: 'stopped', reason: 'the endpoint is disabled' };
    }
    const result = await this.sign(endpoint, event);
    const failed = !result.ok;
    await this.record(endpoint, event, request.attempt, {
      status: result.ok ? 'succeeded' : 'failed',
      result,
      nextAttemptAt:
        failed && request.retryInMs !== null ? new Date(this.now().getTime() + request.retryInMs) : null,
    });
    if (result.ok) {
      await this.repo.markDelivered(endpoint.id, this.now());
      return { outcome: 'delivered', status: result.status! };
    }
    return { outcome: 'failed', status: result.status, error: result.error };
  }

  /**
   * A delivery ran out of retries. The endpoint is disabled when nothing at all was delivered
   * to it since this delivery's first attempt: it kept failing the whole time.
   */
  async giveUp(request: { eventId: string; endpointId: string; firstAttemptAt: number; attempts: number }) {
    const hours = Math.round(((this.now().getTime() - request.firstAttemptAt) / 3600_000) * 10) / 10;
    const reason =
      `Disabled after ${request.attempts} failed attempts over ${hours} h to deliver ${request.eventId} ` +
      'with no successful delivery meanwhile. Fix the receiver, then enable the endpoint again ' +
      '(POST /v1/webhook_endpoints/{id} with {"status": "enabled"}).';
    const disabled = await this.repo.disableIfFailingSince(
      request.endpointId,
      new Date(request.firstAttemptAt),
      reason,
    );
    return { disabled };
  }

  /** Sends one test event to the endpoint now and records it (it never disables anything). */
  async sendTest(endpoint: WebhookEndpoint, type: string): Promise<SendResult & { eventId: string }> {
    const event: StoredEvent = {
      id: newId('evt_test_', 24),
      type,
      createdAt: this.now(),
      data: { id: 'batch_test', object: 'batch', status: type.replace(/^batch\./, ''), test: true },
    };
    const result = await this.sign(endpoint, event);
    await this.record(endpoint, event, 1, {
      status: result.ok ? 'succeeded' : 'failed',
      result,
      test: true,
    });
    return { ...result, eventId: event.id };
  }

  /** The secrets that sign now: the current one, and the previous one while it is still valid. */
  private secrets(endpoint: WebhookEndpoint): string[] {
    if (!this.box) throw new WebhookSecretsUnavailable();
    const context = secretContext(endpoint.id);
    const secrets = endpoint.secretSealed ? [this.box.open(endpoint.secretSealed, context)] : [];
    if (
      endpoint.previousSecretSealed &&
      endpoint.previousSecretExpiresAt &&
      endpoint.previousSecretExpiresAt.getTime() > this.now().getTime()
    ) {
      secrets.push(this.box.open(endpoint.previousSecretSealed, context));
    }
    return secrets;
  }

  private sign(endpoint: WebhookEndpoint, event: StoredEvent): Promise<SendResult> {
    const body = eventBody(event, endpoint.payload);
    const timestamp = Math.floor(this.now().getTime() / 1000);
    return this.sender.send(
      endpoint.url,
      signedHeaders(this.secrets(endpoint), event.id, timestamp, body),
      body,
    );
  }

  private async record(
    endpoint: WebhookEndpoint,
    event: StoredEvent,
    attempt: number,
    what: {
      status: WebhookAttempt['status'];
      result?: SendResult;
      error?: string;
      nextAttemptAt?: Date | null;
      test?: boolean;
    },
  ): Promise<void> {
    await this.repo.insertAttempt({
      id: newId('whd_'),
      tenantId: endpoint.tenantId,
      endpointId: endpoint.id,
      eventId: event.id,
      eventType: event.type,
      attempt,
      status: what.status,
      responseStatus: what.result?.status ?? null,
      responseBody: what.result?.body ?? null,
      error: what.result?.error ?? what.error ?? null,
      durationMs: what.result?.durationMs ?? null,
      nextAttemptAt: what.nextAttemptAt ?? null,
      test: what.test ?? false,
      createdAt: this.now(),
    });
  }
}
