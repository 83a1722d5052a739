import type { Logger } from '../observability/logger';
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
} from '@temporalio/client';
import type { webhookDeliveryWorkflow } from '../../workflows/webhook-delivery.workflow';
import type { BargeConfig } from '../config/config';
import type { WebhookRepository } from './webhook.repository';
import { PeriodicRound } from '../common/periodic-round';

/**
 * The outbox relay: batches that end write their event in the same transaction (a trigger,
 * migration 1764300000000); this starts each event's delivery workflow, with the event id as
 * workflow id. Starting is idempotent (a second start finds the first), so several workers may
 * relay at once and a relay that died between the start and marking the row costs nothing.
 */

/** Delivery history is kept this long (the deliveries list, the events behind it). */
const KEEP_MS = 30 * 24 * 3600_000;
const SWEEP_EVERY_MS = 3600_000;
const PER_ROUND = 100;

/** Starts the delivery workflow of an event, or finds it started (or finished) already. */
export async function startWebhookDelivery(
  temporal: Client,
  config: BargeConfig,
  eventId: string,
): Promise<void> {
  const { webhooks } = config;
  try {
    await temporal.workflow.start<typeof webhookDeliveryWorkflow>('webhookDeliveryWorkflow', {
      workflowId: eventId,
      taskQueue: config.temporal.webhookTaskQueue,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [
        {
          eventId,
          schedule: {
            initialDelayMs: webhooks.retryInitialDelayMs,
            maxDelayMs: webhooks.retryMaxDelayMs,
            giveUpAfterMs: webhooks.giveUpAfterMs,
          },
          attemptTimeoutMs: webhooks.timeoutMs,
        },
      ],
      staticSummary: `Webhook event ${eventId}`,
    });
  } catch (err) {
    // It ran already (REJECT_DUPLICATE answers so for a closed workflow): nothing to do.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

export class WebhookEventRelay {
  private readonly rounds: PeriodicRound;
  private lastSweep = 0;

  constructor(
    private readonly repo: WebhookRepository,
    private readonly start: (eventId: string) => Promise<void>,
    intervalMs: number,
    private readonly logger: Pick<Logger, 'warn' | 'error'>,
    private readonly now: () => number = Date.now,
  ) {
    this.rounds = new PeriodicRound(
      () => this.runOnce(),
      intervalMs,
      (err) => this.logger.error({ err }, `webhook relay round failed: ${err.message}`),
    );
  }

  begin(): void {
    this.rounds.start({ immediately: true });
  }

  stop(): Promise<void> {
    return this.rounds.stop();
  }

  /** Starts the workflows of events that have none yet; returns how many it started. */
  async runOnce(): Promise<number> {
    let started = 0;
    for (;;) {
      const ids = await this.repo.unstartedEvents(PER_ROUND);
      const done: string[] = [];
      for (const id of ids) {
        try {
          await this.start(id);
          done.push(id);
        } catch (err) {
          this.logger.warn(
            { event_id: id, err },
            `could not start the delivery of ${id} (will retry): ${(err as Error).message}`,
          );
        }
      }
      await this.repo.markStarted(done);
      started += done.length;
      if (ids.length < PER_ROUND || done.length === 0) break;
    }
    if (this.now() - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = this.now();
      await this.repo.sweepBefore(new Date(this.now() - KEEP_MS));
    }
    return started;
  }
}
