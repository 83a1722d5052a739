import { invalidRequest } from '../common/openai-error';
import { requireStorable } from '../common/tenant-input';
import { echo } from '../common/text';
import { isWebhookEventType, WEBHOOK_EVENT_TYPES, type PayloadKind } from './events';
import type { EndpointChanges } from './webhook.repository';

/** Checks the bodies of the webhook endpoint routes; OpenAI-style 400s naming the parameter. */

const MAX_NAME_LENGTH = 256;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export interface CreateEndpointRequest {
  url: string;
  name: string | null;
  eventTypes: string[];
  payload: PayloadKind;
}

function bodyOf(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (!isObject(body)) {
    throw invalidRequest('The request body must be a JSON object (Content-Type: application/json).');
  }
  return body;
}

function url(value: unknown): string {
  if (value === undefined || value === null || value === '') {
    throw invalidRequest("Missing required parameter: 'url'.", 'url', 'missing_required_parameter');
  }
  if (typeof value !== 'string')
    throw invalidRequest("Invalid type for 'url': expected a string.", 'url', 'invalid_type');
  return requireStorable(value, 'url');
}

function eventTypes(value: unknown): string[] {
  if (value === undefined || value === null) {
    throw invalidRequest(
      "Missing required parameter: 'event_types'.",
      'event_types',
      'missing_required_parameter',
    );
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRequest(
      "'event_types' must be a non-empty array of event types.",
      'event_types',
      'invalid_type',
    );
  }
  for (const [i, type] of value.entries()) {
    if (!isWebhookEventType(type)) {
      throw invalidRequest(
        `Invalid event type ${echo(type)}. Supported: ${WEBHOOK_EVENT_TYPES.join(', ')}.`,
        `event_types[${i}]`,
        'invalid_value',
      );
    }
  }
  return [...new Set(value as string[])];
}

function name(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') {
    throw invalidRequest("Invalid type for 'name': expected a string.", 'name', 'invalid_type');
  }
  requireStorable(value, 'name');
  if (value.length > MAX_NAME_LENGTH) {
    throw invalidRequest(`'name' may be at most ${MAX_NAME_LENGTH} characters.`, 'name', 'invalid_value');
  }
  return value;
}

function payload(value: unknown): PayloadKind {
  if (value === 'thin' || value === 'full') return value;
  throw invalidRequest(
    `Invalid value for 'payload': ${echo(value)}. Supported: thin (OpenAI's body), full (with request_counts and file ids).`,
    'payload',
    'invalid_value',
  );
}

export function parseCreateEndpoint(body: unknown): CreateEndpointRequest {
  const b = bodyOf(body);
  return {
    url: url(b.url),
    eventTypes: eventTypes(b.event_types),
    name: name(b.name),
    payload: b.payload === undefined ? 'thin' : payload(b.payload),
  };
}

export function parseUpdateEndpoint(body: unknown): EndpointChanges {
  const b = bodyOf(body);
  const changes: EndpointChanges = {};
  if (b.url !== undefined) changes.url = url(b.url);
  if (b.event_types !== undefined) changes.eventTypes = eventTypes(b.event_types);
  if (b.name !== undefined) changes.name = name(b.name);
  if (b.payload !== undefined) changes.payload = payload(b.payload);
  if (b.status !== undefined) {
    if (b.status !== 'enabled' && b.status !== 'disabled') {
      throw invalidRequest(
        `Invalid value for 'status': ${echo(b.status)}. Supported: enabled, disabled.`,
        'status',
        'invalid_value',
      );
    }
    changes.status = b.status;
  }
  return changes;
}

/** rotate_secret: `keep_previous_secret` keeps the old secret valid (signing too) for 24 hours. */
export function parseRotate(body: unknown): { keepPrevious: boolean } {
  const keep = bodyOf(body).keep_previous_secret;
  if (keep === undefined || keep === null) return { keepPrevious: false };
  if (typeof keep !== 'boolean') {
    throw invalidRequest(
      "Invalid type for 'keep_previous_secret': expected a boolean.",
      'keep_previous_secret',
      'invalid_type',
    );
  }
  return { keepPrevious: keep };
}

/** test: `event_type` to send (default: the endpoint's first). */
export function parseTest(body: unknown, subscribed: readonly string[]): string {
  const type = bodyOf(body).event_type;
  if (type === undefined || type === null) return subscribed[0] ?? WEBHOOK_EVENT_TYPES[0];
  if (!isWebhookEventType(type)) {
    throw invalidRequest(
      `Invalid event type ${echo(type)}. Supported: ${WEBHOOK_EVENT_TYPES.join(', ')}.`,
      'event_type',
      'invalid_value',
    );
  }
  return type;
}
