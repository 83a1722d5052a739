import type { BatchErrorItem } from '../../database/entities/batch.entity';
import { BATCH_ENDPOINTS, BatchEndpoint, DEFAULT_MODERATION_MODEL } from '../../common/endpoints';
import { describeUnstorable, echo, unstorableText } from '../../common/text';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth';
import { MAX_LINE_BYTES } from './jsonl-lines';

/** A request line that passed validation. */
export interface ValidRequest {
  customId: string;
  model: string;
  body: Record<string, unknown>;
}

const MAX_CUSTOM_ID_LENGTH = 512;
/** Model names are identifiers; a longer one is an attack on whatever matches them. */
export const MAX_MODEL_LENGTH = 256;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields of a line that are stored as text (outcome rows, errors, the batch's model). */
const STORED_FIELDS = ['custom_id', 'method', 'url'] as const;

/**
 * Checks one input line on its own (not against the others: duplicates and the one-model rule
 * are the caller's). Returns the request or the first problem, OpenAI's codes where known.
 * The limits that keep one line from hurting the worker come first: size, then nesting depth
 * (before anything recursive sees the line). Every echo of the line's values is bounded.
 */
export function validateLine(
  text: string,
  line: number,
  endpoint: BatchEndpoint,
): { request: ValidRequest } | { error: BatchErrorItem } {
  const fail = (code: string, message: string, param: string | null = null) => ({
    error: { code, message, param, line },
  });
  // Cheap upper bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 > MAX_LINE_BYTES && Buffer.byteLength(text) > MAX_LINE_BYTES) {
    return fail(
      'line_too_large',
      `This line is longer than ${MAX_LINE_BYTES} bytes, the limit for one request.`,
    );
  }
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    return fail(
      'too_deeply_nested',
      `This line nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep, the limit for one request.`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('invalid_json_line', `This line is not parseable as valid JSON.`);
  }
  if (!isObject(parsed)) return fail('invalid_json_line', 'Each line must be a JSON object.');
  for (const field of ['custom_id', 'body'] as const) {
    if (parsed[field] === undefined || parsed[field] === null) {
      return fail('missing_required_parameter', `Missing required parameter: '${field}'.`, field);
    }
  }
  for (const field of STORED_FIELDS) {
    const value = parsed[field];
    const problem = typeof value === 'string' ? unstorableText(value) : null;
    if (problem) {
      return fail(
        'invalid_text',
        `'${field}' contains ${describeUnstorable(problem)}, which is not allowed.`,
        field,
      );
    }
  }
  const { custom_id: customId, body } = parsed;
  // The seed providers' lines carry only custom_id and body: method and url then come from
  // the batch (POST to its endpoint). When a line does carry them, they must still match.
  const method = parsed.method ?? 'POST';
  const url = parsed.url ?? endpoint;
  if (typeof customId !== 'string' || customId.length === 0 || customId.length > MAX_CUSTOM_ID_LENGTH) {
    return fail(
      'invalid_request',
      `'custom_id' must be a non-empty string of at most ${MAX_CUSTOM_ID_LENGTH} characters.`,
      'custom_id',
    );
  }
  if (method !== 'POST')
    return fail('invalid_method', `Only the POST method is supported, got '${echo(method)}'.`, 'method');
  if (url !== endpoint) {
    return fail(
      'invalid_url',
      `The url '${echo(url)}' does not match the batch endpoint '${endpoint}'.`,
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
  const modelProblem = unstorableText(model);
  if (modelProblem) {
    return fail(
      'invalid_text',
      `'body.model' contains ${describeUnstorable(modelProblem)}, which is not allowed.`,
      'body.model',
    );
  }
  if (model.length > MAX_MODEL_LENGTH) {
    return fail(
      'model_too_long',
      `'body.model' is ${model.length} characters long; model names may have at most ${MAX_MODEL_LENGTH}.`,
      'body.model',
    );
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
