import type { AttemptOutcome, AttemptRequest, WebhookDeliveries } from '../src/webhooks/delivery';

/**
 * The webhook delivery activities: thin adapters over WebhookDeliveries (src/webhooks/),
 * registered by the webhook worker (src/webhooks/webhook-worker.ts) on its own task queue, so
 * slow receivers never hold the slots of batch bookkeeping or upstream calls.
 */
export function createWebhookActivities(deliveries: WebhookDeliveries) {
  return {
    /** The endpoints an event goes to (fixed once, when its delivery starts). */
    webhookTargets: ({ eventId }: { eventId: string }): Promise<string[]> => deliveries.targets(eventId),
    /** One signed POST to one endpoint, recorded in its deliveries. */
    attemptWebhookDelivery: (request: AttemptRequest): Promise<AttemptOutcome> => deliveries.attempt(request),
    /** The retries ran out: disables an endpoint that kept failing. */
    webhookDeliveryGivenUp: (request: {
      eventId: string;
      endpointId: string;
      firstAttemptAt: number;
      attempts: number;
    }): Promise<{ disabled: boolean }> => deliveries.giveUp(request),
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
