import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { eventBody } from '../../src/webhooks/events';
import { newSigningSecret, secretHint, signedHeaders } from '../../src/webhooks/signature';
import { retryDelayMs } from '../../src/webhooks/retry-schedule';

const event = {
  id: 'evt_0123456789abcdef',
  type: 'batch.completed',
  createdAt: new Date(1_750_000_000_000),
  data: {
    id: 'batch_abc',
    object: 'batch',
    status: 'completed',
    request_counts: { total: 2, completed: 2, failed: 0 },
  },
};

describe('webhook signing', () => {
  const secret = newSigningSecret();
  const now = Math.floor(Date.now() / 1000);

  it('is verified by the openai package and the standardwebhooks library', async () => {
    const body = eventBody(event, 'thin');
    const headers = signedHeaders([secret], event.id, now, body);
    const client = new OpenAI({ apiKey: 'unused', baseURL: 'http://127.0.0.1:9/v1' });
    await expect(client.webhooks.unwrap(body, headers, secret)).resolves.toEqual({
      id: event.id,
      object: 'event',
      created_at: 1_750_000_000,
      type: 'batch.completed',
      data: { id: 'batch_abc' },
    });
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ data: { id: 'batch_abc' } });
    // Tampering is caught by both.
    await expect(client.webhooks.unwrap(body.replace('abc', 'abd'), headers, secret)).rejects.toThrow();
    expect(() => new Webhook(newSigningSecret()).verify(body, headers)).toThrow();
  });

  it('signs with every valid secret, so either verifies during a rotation', async () => {
    const old = newSigningSecret();
    const body = eventBody(event, 'full');
    const headers = signedHeaders([secret, old], event.id, now, body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(old).verify(body, headers)).toMatchObject({ data: { request_counts: { total: 2 } } });
    expect(new Webhook(secret).verify(body, headers)).toBeTruthy();
  });

  it('shows only a hint of a secret', () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretHint(secret)).toBe(`whsec_...${secret.slice(-4)}`);
  });
});

describe('retryDelayMs', () => {
  const schedule = { initialDelayMs: 10_000, maxDelayMs: 2 * 3600_000, giveUpAfterMs: 24 * 3600_000 };

  it('backs off exponentially up to the cap and gives up after 24 hours, the last attempt at the end', () => {
    const attempts: number[] = [0];
    let elapsed = 0;
    for (let attempt = 1; ; attempt++) {
      const delay = retryDelayMs(schedule, attempt, elapsed);
      if (delay === null) break;
      expect(delay).toBeLessThanOrEqual(schedule.maxDelayMs);
      elapsed += delay;
      attempts.push(elapsed);
      expect(attempts.length).toBeLessThan(100);
    }
    expect(attempts.slice(1, 5)).toEqual([10_000, 30_000, 70_000, 150_000]);
    expect(attempts[attempts.length - 1]).toBe(24 * 3600_000);
    expect(attempts.length).toBeGreaterThanOrEqual(18);
    expect(attempts.length).toBeLessThanOrEqual(25);
  });

  it('jitters by at most 20% and never waits past the window', () => {
    expect(retryDelayMs(schedule, 1, 0, () => 0)).toBe(8_000);
    expect(retryDelayMs(schedule, 1, 0, () => 1)).toBe(12_000);
    expect(retryDelayMs(schedule, 30, 24 * 3600_000 - 5, () => 1)).toBe(5);
    expect(retryDelayMs(schedule, 2, 24 * 3600_000)).toBeNull();
  });
});
