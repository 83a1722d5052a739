import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WebhookActivities } from '../../activities/webhook.activity';
import type { AttemptRequest } from '../../src/webhooks/delivery';
import { createTimeSkippingEnv, startWorker, type RunningWorker } from '../support/time-skipping';

const HOUR = 3600_000;
const DAY_SCHEDULE = { initialDelayMs: 10_000, maxDelayMs: 2 * HOUR, giveUpAfterMs: 24 * HOUR };

/**
 * The webhook delivery workflow on Temporal's time-skipping test server, with mocked
 * activities: its real retry schedule over a real (skipped) 24 hours.
 */
describe('webhookDeliveryWorkflow', () => {
  let env: TestWorkflowEnvironment;
  let worker: RunningWorker;
  const attempts: (AttemptRequest & { at: number })[] = [];
  const givenUp: { endpointId: string; attempts: number }[] = [];
  /** Per endpoint: how many attempts fail before one is delivered (Infinity: all fail). */
  const failures = new Map<string, number>();

  beforeAll(async () => {
    env = await createTimeSkippingEnv();
    const activities: WebhookActivities = {
      webhookTargets: async ({ eventId }) => (eventId.includes('none') ? [] : ['wh_fails', 'wh_third']),
      attemptWebhookDelivery: async (request) => {
        attempts.push({ ...request, at: await env.currentTimeMs() });
        return request.attempt > (failures.get(request.endpointId) ?? 0)
          ? { outcome: 'delivered', status: 200 }
          : { outcome: 'failed', status: 500, error: null };
      },
      webhookDeliveryGivenUp: async ({ endpointId, attempts: n }) => {
        givenUp.push({ endpointId, attempts: n });
        return { disabled: true };
      },
    };
    worker = await startWorker(env, { taskQueue: 'webhooks', activities, workflows: true });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await env?.teardown();
  });

  it('retries a failing receiver with backoff for 24 hours, then gives up; another is delivered on its third attempt', async () => {
    failures.set('wh_fails', Infinity).set('wh_third', 2);
    const started = await env.currentTimeMs();
    const result = await env.client.workflow.execute('webhookDeliveryWorkflow', {
      workflowId: 'evt_schedule',
      taskQueue: 'webhooks',
      args: [{ eventId: 'evt_schedule', schedule: DAY_SCHEDULE, attemptTimeoutMs: 10_000 }],
    });

    const third = attempts.filter((a) => a.endpointId === 'wh_third');
    expect(third.map((a) => a.attempt)).toEqual([1, 2, 3]);
    const failing = attempts.filter((a) => a.endpointId === 'wh_fails');
    expect(failing.length).toBeGreaterThanOrEqual(18);
    expect(failing.length).toBeLessThanOrEqual(25);
    expect(failing.map((a) => a.attempt)).toEqual(failing.map((_, i) => i + 1));
    const gaps = failing.slice(1).map((a, i) => a.at - failing[i].at);
    // Backoff: each wait about twice the one before (with jitter), never above 2 h (+20% jitter).
    // The first wait is 10 s +-20%; the clock is read inside the next attempt, so the gap also
    // holds the (real) time that attempt took to be scheduled and started: up to a second here.
    expect(gaps[0]).toBeGreaterThanOrEqual(8_000);
    expect(gaps[0]).toBeLessThanOrEqual(13_000);
    expect(gaps[4]).toBeGreaterThan(gaps[0] * 8);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * HOUR * 1.2);
    const span = failing[failing.length - 1].at - failing[0].at;
    expect(span).toBeGreaterThanOrEqual(24 * HOUR - 60_000);
    expect(span).toBeLessThanOrEqual(24 * HOUR + 60_000);
    // The last attempt says so (no retry after it); every earlier one announces the next.
    expect(failing[failing.length - 1].retryInMs).toBeNull();
    expect(failing.slice(0, -1).every((a) => typeof a.retryInMs === 'number')).toBe(true);
    expect(givenUp).toEqual([{ endpointId: 'wh_fails', attempts: failing.length }]);
    expect(result).toEqual({
      endpoints: [
        { endpointId: 'wh_fails', outcome: 'given_up', attempts: failing.length },
        { endpointId: 'wh_third', outcome: 'delivered', attempts: 3 },
      ],
    });
    expect((await env.currentTimeMs()) - started).toBeGreaterThanOrEqual(24 * HOUR - 60_000);
  });

  it('ends at once for an event no endpoint takes', async () => {
    const result = await env.client.workflow.execute('webhookDeliveryWorkflow', {
      workflowId: 'evt_none',
      taskQueue: 'webhooks',
      args: [{ eventId: 'evt_none', schedule: DAY_SCHEDULE, attemptTimeoutMs: 10_000 }],
    });
    expect(result).toEqual({ endpoints: [] });
  });
});
