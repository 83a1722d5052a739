import { proxyActivities, sleep } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhook.activity';
import { retryDelayMs, type RetrySchedule } from '../src/webhooks/retry-schedule';

/**
 * One workflow per webhook event (workflow id = event id): delivers it to each endpoint it
 * targets, retrying a failed attempt on `schedule` (backoff up to 24 hours by default). Timers
 * and attempts are Temporal's, so a delivery survives restarts of every process; the event id
 * is the `webhook-id` of every attempt, so a receiver can drop the duplicates that at-least-once
 * delivery allows.
 */

export interface WebhookDeliveryInput {
  eventId: string;
  schedule: RetrySchedule;
  /** One attempt's HTTP timeout (the activity gets a margin beyond it). */
  attemptTimeoutMs: number;
}

export interface WebhookDeliveryResult {
  endpoints: { endpointId: string; outcome: 'delivered' | 'given_up' | 'stopped'; attempts: number }[];
}

export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  // Infrastructure faults (Postgres down) retry here; a receiver's failure is an attempt's result.
  const acts = proxyActivities<WebhookActivities>({
    startToCloseTimeout: input.attemptTimeoutMs + 30_000,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 10,
    },
  });
  const targets = await acts.webhookTargets({ eventId: input.eventId });

  async function deliverTo(endpointId: string): Promise<WebhookDeliveryResult['endpoints'][number]> {
    const firstAttemptAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      const retryInMs = retryDelayMs(input.schedule, attempt, Date.now() - firstAttemptAt, Math.random);
      let outcome: string;
      try {
        ({ outcome } = await acts.attemptWebhookDelivery({
          eventId: input.eventId,
          endpointId,
          attempt,
          retryInMs,
        }));
      } catch {
        outcome = 'failed'; // the attempt could not even be made or recorded: it counts as failed
      }
      if (outcome === 'delivered' || outcome === 'stopped') {
        return { endpointId, outcome, attempts: attempt };
      }
      if (retryInMs === null) {
        await acts.webhookDeliveryGivenUp({
          eventId: input.eventId,
          endpointId,
          firstAttemptAt,
          attempts: attempt,
        });
        return { endpointId, outcome: 'given_up', attempts: attempt };
      }
      await sleep(retryInMs);
    }
  }

  return { endpoints: await Promise.all(targets.map(deliverTo)) };
}
