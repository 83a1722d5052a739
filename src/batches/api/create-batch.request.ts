import { invalidRequest, notFound } from '../../common/openai-error';
import { BATCH_ENDPOINTS, BatchEndpoint, isBatchEndpoint } from '../../common/endpoints';
import { isIdShaped, requireStorable } from '../../common/tenant-input';
import { echo } from '../../common/text';

export interface CreateBatchRequest {
  inputFileId: string;
  endpoint: BatchEndpoint;
  completionWindow: string;
  metadata: Record<string, string> | null;
  outputExpiresAfterSeconds: number | null;
}

const MAX_METADATA_PAIRS = 16;
const MAX_METADATA_KEY = 64;
const MAX_METADATA_VALUE = 512;
const OUTPUT_EXPIRY_SECONDS = { min: 3_600, max: 2_592_000 };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a POST /v1/batches body; throws OpenAI-style 400s naming the parameter. Every string
 * that gets stored (the ids, endpoint, window, metadata keys and values) passes the boundary
 * rule for text Postgres cannot store, and every echo of input is bounded. A body without
 * `completion_window` gets `defaultWindow` (the seed providers let it be left out); without a
 * default it is a 400, as at OpenAI.
 */
export function parseCreateBatch(
  body: unknown,
  completionWindows: string[],
  defaultWindow?: string,
): CreateBatchRequest {
  if (!isObject(body)) {
    throw invalidRequest('The request body must be a JSON object (Content-Type: application/json).');
  }
  const { input_file_id: inputFileId, endpoint, completion_window: window, metadata } = body;

  if (inputFileId === undefined || inputFileId === null || inputFileId === '') {
    throw invalidRequest(
      "Missing required parameter: 'input_file_id'.",
      'input_file_id',
      'missing_required_parameter',
    );
  }
  if (typeof inputFileId !== 'string') {
    throw invalidRequest(
      "Invalid type for 'input_file_id': expected a string.",
      'input_file_id',
      'invalid_type',
    );
  }
  requireStorable(inputFileId, 'input_file_id');
  // No file has such an id: the same 404 as for an unknown one, without asking the database.
  if (!isIdShaped(inputFileId)) throw notFound(`No such File object: ${echo(inputFileId)}`, 'input_file_id');
  const batchEndpoint = parseEndpoint(endpoint);
  const completionWindow = parseWindow(window ?? defaultWindow, completionWindows);
  return {
    inputFileId,
    endpoint: batchEndpoint,
    completionWindow,
    metadata: parseMetadata(metadata),
    outputExpiresAfterSeconds: parseOutputExpiry(body.output_expires_after),
  };
}

/** A completion window: one of the configured ones (`window` absent: a 400 naming the parameter). */
export function parseWindow(window: unknown, completionWindows: string[]): string {
  if (window === undefined) {
    throw invalidRequest(
      "Missing required parameter: 'completion_window'.",
      'completion_window',
      'missing_required_parameter',
    );
  }
  if (typeof window === 'string') requireStorable(window, 'completion_window');
  if (typeof window !== 'string' || !completionWindows.includes(window)) {
    throw invalidRequest(
      `Invalid value for 'completion_window': ${echo(window)}. Supported: ${completionWindows.join(', ')}.`,
      'completion_window',
      'invalid_value',
    );
  }
  return window;
}

function parseMetadata(metadata: unknown): Record<string, string> | null {
  if (metadata === undefined || metadata === null) return null;
  if (!isObject(metadata))
    throw invalidRequest("'metadata' must be an object of string values.", 'metadata', 'invalid_type');
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_PAIRS) {
    throw invalidRequest(
      `'metadata' may have at most ${MAX_METADATA_PAIRS} keys.`,
      'metadata',
      'invalid_value',
    );
  }
  for (const [key, value] of entries) {
    requireStorable(key, 'metadata');
    if (key.length > MAX_METADATA_KEY) {
      throw invalidRequest(
        `Metadata keys may be at most ${MAX_METADATA_KEY} characters.`,
        `metadata.${key}`,
        'invalid_value',
      );
    }
    if (typeof value !== 'string') {
      throw invalidRequest('Metadata values must be strings.', `metadata.${key}`, 'invalid_type');
    }
    requireStorable(value, `metadata.${key}`);
    if (value.length > MAX_METADATA_VALUE) {
      throw invalidRequest(
        `Metadata values may be at most ${MAX_METADATA_VALUE} characters.`,
        `metadata.${key}`,
        'invalid_value',
      );
    }
  }
  return metadata as Record<string, string>;
}

function parseOutputExpiry(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  const param = 'output_expires_after';
  if (!isObject(value) || value.anchor !== 'created_at') {
    throw invalidRequest(
      "'output_expires_after.anchor' must be 'created_at'.",
      `${param}.anchor`,
      'invalid_value',
    );
  }
  const s = value.seconds;
  if (
    typeof s !== 'number' ||
    !Number.isInteger(s) ||
    s < OUTPUT_EXPIRY_SECONDS.min ||
    s > OUTPUT_EXPIRY_SECONDS.max
  ) {
    throw invalidRequest(
      `'output_expires_after.seconds' must be an integer from ${OUTPUT_EXPIRY_SECONDS.min} to ${OUTPUT_EXPIRY_SECONDS.max}.`,
      `${param}.seconds`,
      'invalid_value',
    );
  }
  return s;
}

/** The `endpoint` a request names: one of the batch endpoints, else 400 naming the supported ones. */
export function parseEndpoint(endpoint: unknown): BatchEndpoint {
  if (endpoint === undefined) {
    throw invalidRequest("Missing required parameter: 'endpoint'.", 'endpoint', 'missing_required_parameter');
  }
  if (typeof endpoint === 'string') requireStorable(endpoint, 'endpoint');
  if (!isBatchEndpoint(endpoint)) {
    throw invalidRequest(
      `Invalid value for 'endpoint': ${echo(endpoint)}. Supported: ${Object.keys(BATCH_ENDPOINTS).join(', ')}.`,
      'endpoint',
      'invalid_value',
    );
  }
  return endpoint;
}
