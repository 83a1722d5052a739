/** The events Barge sends, as OpenAI names them, and their bodies. */

export const WEBHOOK_EVENT_TYPES = [
  'batch.completed',
  'batch.failed',
  'batch.expired',
  'batch.cancelled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const isWebhookEventType = (value: unknown): value is WebhookEventType =>
  typeof value === 'string' && (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);

/**
 * What an endpoint receives: `thin` is OpenAI's body (`data` is `{id}`, the receiver fetches
 * the batch); `full` also carries the batch's status, request_counts and file ids as they were
 * when it ended.
 */
export type PayloadKind = 'thin' | 'full';

/** The batch as it ended (written by the trigger of migration 1764300000000). */
export interface BatchSnapshot {
  id: string;
  [field: string]: unknown;
}

export interface StoredEvent {
  id: string;
  type: string;
  createdAt: Date;
  data: BatchSnapshot;
}

/** The body of an event, as the exact text that is signed and sent. */
export function eventBody(event: StoredEvent, payload: PayloadKind): string {
  return JSON.stringify({
    id: event.id,
    object: 'event',
    created_at: Math.floor(event.createdAt.getTime() / 1000),
    type: event.type,
    data: payload === 'full' ? event.data : { id: event.data.id },
  });
}
