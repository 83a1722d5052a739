import type { BatchErrorItem } from '../../database/entities/batch.entity';
import { BATCH_ENDPOINTS, BatchEndpoint, DEFAULT_MODERATION_MODEL } from '../../common/endpoints';

/** A request line that passed validation. */
export interface ValidRequest {
  customId: string;
  model: string;
  body: Record<string, unknown>;
}

const MAX_CUSTOM_ID_LENGTH = 512;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks one input line on its own (not against the others: duplicates and the one-model rule
 * are the caller's). Returns the request or the first problem, OpenAI's codes where known.
 */
export function validateLine(
  text: string,
  line: number,
  endpoint: BatchEndpoint,
): { request: ValidRequest } | { error: BatchErrorItem } {
  const fail = (code: string, message: string, param: string | null = null) => ({
    error: { code, message, param, line },
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('invalid_json_line', `This line is not parseable as valid JSON.`);
  }
  if (!isObject(parsed)) return fail('invalid_json_line', 'Each line must be a JSON object.');
  for (const field of ['custom_id', 'method', 'url', 'body'] as const) {
    if (parsed[field] === undefined || parsed[field] === null) {
      return fail('missing_required_parameter', `Missing required parameter: '${field}'.`, field);
    }
  }
  const { custom_id: customId, method, url, body } = parsed;
  if (typeof customId !== 'string' || customId.length === 0 || customId.length > MAX_CUSTOM_ID_LENGTH) {
    return fail(
      'invalid_request',
      `'custom_id' must be a non-empty string of at most ${MAX_CUSTOM_ID_LENGTH} characters.`,
      'custom_id',
    );
  }
  if (method !== 'POST')
    return fail('invalid_method', `Only the POST method is supported, got '${String(method)}'.`, 'method');
  if (url !== endpoint) {
    return fail(
      'invalid_url',
      `The url '${String(url)}' does not match the batch endpoint '${endpoint}'.`,
      'url',
    );
  }
  if (!isObject(body)) return fail('invalid_request', "'body' must be a JSON object.", 'body');
  if (body.stream === true)
    return fail('streaming_unsupported', 'Streaming is not supported in batches.', 'body.stream');

  const spec = BATCH_ENDPOINTS[endpoint];
  let model = body.model;
  if (model === undefined && !spec.modelRequired) model = DEFAULT_MODERATION_MODEL;
  if (model === undefined || model === null) {
    return fail('missing_required_parameter', "Missing required parameter: 'body.model'.", 'body.model');
  }
  if (typeof model !== 'string' || model.length === 0) {
    return fail('invalid_request', "'body.model' must be a non-empty string.", 'body.model');
  }
  if (body[spec.requires] === undefined || body[spec.requires] === null) {
    return fail(
      'missing_required_parameter',
      `Missing required parameter: 'body.${spec.requires}' (needed by ${endpoint}).`,
      `body.${spec.requires}`,
    );
  }
  return { request: { customId, model, body } };
}
