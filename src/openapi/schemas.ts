import { BATCH_ENDPOINTS } from '../common/endpoints';
import { BATCH_STATUSES } from '../database/entities/batch.entity';

/**
 * The schemas of the objects the API answers with, in OpenAPI 3.1's JSON Schema: OpenAI's own
 * (Batch, File, lists, the error envelope) as OpenAI documents them, and Barge's additions
 * marked `x-barge: true`. test/api/openapi.spec.ts validates real answers against them.
 */

type Schema = Record<string, unknown>;

const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const unixSeconds = (description: string): Schema => nullable('integer', { description });
const refTo = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** Marks what OpenAI's API does not have. */
export const BARGE = { 'x-barge': true } as const;

const listOf = (item: string, description: string): Schema => ({
  type: 'object',
  description,
  required: ['object', 'data', 'first_id', 'last_id', 'has_more'],
  properties: {
    object: { const: 'list' },
    data: { type: 'array', items: refTo(item) },
    first_id: nullable('string'),
    last_id: nullable('string'),
    has_more: { type: 'boolean' },
  },
});

export const SCHEMAS = {
  Error: {
    type: 'object',
    description: "OpenAI's error envelope: every non-2xx answer of the API has this body.",
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['message', 'type', 'param', 'code'],
        properties: {
          message: { type: 'string' },
          type: { type: 'string' },
          param: nullable('string'),
          code: nullable('string'),
        },
      },
    },
  },
  BatchError: {
    type: 'object',
    required: ['code', 'message'],
    properties: {
      code: { type: 'string' },
      message: { type: 'string' },
      param: nullable('string'),
      line: nullable('integer'),
    },
  },
  Batch: {
    type: 'object',
    description: "OpenAI's Batch object.",
    required: [
      'id',
      'object',
      'endpoint',
      'input_file_id',
      'completion_window',
      'status',
      'created_at',
      'request_counts',
    ],
    properties: {
      id: { type: 'string' },
      object: { const: 'batch' },
      endpoint: { type: 'string', enum: Object.keys(BATCH_ENDPOINTS) },
      model: nullable('string', { description: 'The model of the input file, once validated.' }),
      errors: {
        type: ['object', 'null'],
        required: ['object', 'data'],
        properties: {
          object: { const: 'list' },
          data: { type: 'array', items: { $ref: '#/components/schemas/BatchError' } },
        },
      },
      input_file_id: { type: 'string' },
      completion_window: {
        type: 'string',
        description:
          'OpenAI accepts 24h. Barge accepts the windows of its configuration (batches.completionWindows).',
      },
      status: { type: 'string', enum: [...BATCH_STATUSES] },
      output_file_id: nullable('string'),
      error_file_id: nullable('string'),
      created_at: { type: 'integer' },
      in_progress_at: unixSeconds('When validation ended and requests started.'),
      expires_at: unixSeconds('When the completion window ends.'),
      finalizing_at: unixSeconds('When the output files started to be written.'),
      completed_at: unixSeconds(''),
      failed_at: unixSeconds(''),
      expired_at: unixSeconds(''),
      cancelling_at: unixSeconds(''),
      cancelled_at: unixSeconds(''),
      request_counts: {
        type: 'object',
        required: ['total', 'completed', 'failed'],
        properties: {
          total: { type: 'integer', minimum: 0 },
          completed: { type: 'integer', minimum: 0 },
          failed: { type: 'integer', minimum: 0 },
        },
      },
      usage: {
        type: 'object',
        required: ['input_tokens', 'output_tokens', 'total_tokens'],
        properties: {
          input_tokens: { type: 'integer' },
          input_tokens_details: { type: 'object', properties: { cached_tokens: { type: 'integer' } } },
          output_tokens: { type: 'integer' },
          output_tokens_details: { type: 'object', properties: { reasoning_tokens: { type: 'integer' } } },
          total_tokens: { type: 'integer' },
        },
      },
      metadata: {
        type: ['object', 'null'],
        additionalProperties: { type: 'string' },
        description: 'Up to 16 pairs; keys up to 64 characters, values up to 512.',
      },
    },
  },
  BatchList: listOf('Batch', 'Batches, newest first.'),
  File: {
    type: 'object',
    description: "OpenAI's File object.",
    required: ['id', 'object', 'bytes', 'created_at', 'filename', 'purpose'],
    properties: {
      id: { type: 'string' },
      object: { const: 'file' },
      bytes: { type: 'integer', minimum: 0 },
      created_at: { type: 'integer' },
      expires_at: nullable('integer'),
      filename: { type: 'string' },
      purpose: { type: 'string' },
      status: { type: 'string', description: 'Deprecated by OpenAI; always `processed`.' },
      status_details: { type: 'null' },
    },
  },
  FileList: listOf('File', 'Files, oldest first.'),
  DeletedFile: {
    type: 'object',
    required: ['id', 'object', 'deleted'],
    properties: { id: { type: 'string' }, object: { const: 'file' }, deleted: { const: true } },
  },
  CreateBatchRequest: {
    type: 'object',
    required: ['input_file_id', 'endpoint', 'completion_window'],
    properties: {
      input_file_id: { type: 'string', description: 'A file uploaded with purpose `batch`.' },
      endpoint: { type: 'string', enum: Object.keys(BATCH_ENDPOINTS) },
      completion_window: { type: 'string', examples: ['24h'] },
      metadata: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
      output_expires_after: {
        type: 'object',
        required: ['anchor', 'seconds'],
        properties: {
          anchor: { const: 'created_at' },
          seconds: { type: 'integer', minimum: 3600, maximum: 2592000 },
        },
      },
    },
  },
  UploadFileRequest: {
    type: 'object',
    required: ['file', 'purpose'],
    properties: {
      file: { type: 'string', contentMediaType: 'application/octet-stream', description: 'A JSONL file.' },
      purpose: { type: 'string', examples: ['batch'] },
    },
  },
  Price: {
    type: ['object', 'null'],
    ...BARGE,
    description: 'The configured price (pricing.models); null when the model has none there.',
    required: ['input_per_1m_tokens', 'output_per_1m_tokens', 'batch_discount', 'currency'],
    properties: {
      input_per_1m_tokens: { type: 'number', minimum: 0 },
      output_per_1m_tokens: { type: 'number', minimum: 0 },
      batch_discount: { type: 'number', minimum: 0, maximum: 1, description: 'Share taken off.' },
      currency: { const: 'usd' },
    },
  },
  Cost: {
    type: 'object',
    ...BARGE,
    required: ['value', 'currency', 'unpriced_models'],
    properties: {
      value: nullable('number', {
        description: 'USD, the batch discount taken off; null when a model has no price.',
      }),
      currency: { const: 'usd' },
      unpriced_models: { type: 'array', items: { type: 'string' }, description: 'Why `value` is null.' },
    },
  },
  CostEstimate: {
    type: 'object',
    ...BARGE,
    description:
      "What a batch over the file would cost: input tokens estimated as validation does (about 4 characters a token), output bounded by each request's max_tokens (or default_max_output_tokens), each model at the price of the upstream routing tries first.",
    required: [
      'object',
      'file_id',
      'endpoint',
      'requests',
      'invalid_requests',
      'input_tokens',
      'max_output_tokens',
      'default_max_output_tokens',
      'cost',
      'by_model',
    ],
    properties: {
      object: { const: 'file.cost_estimate' },
      file_id: { type: 'string' },
      endpoint: { type: 'string', enum: Object.keys(BATCH_ENDPOINTS) },
      requests: { type: 'integer', minimum: 0 },
      invalid_requests: {
        type: 'integer',
        minimum: 0,
        description: 'Lines validation would refuse; not priced.',
      },
      input_tokens: { type: 'integer', minimum: 0 },
      max_output_tokens: { type: 'integer', minimum: 0 },
      default_max_output_tokens: { type: 'integer', minimum: 1 },
      cost: refTo('Cost'),
      by_model: {
        type: 'array',
        items: {
          type: 'object',
          required: [
            'model',
            'requests',
            'input_tokens',
            'max_output_tokens',
            'requests_without_max_tokens',
            'upstream',
            'price',
            'cost',
          ],
          properties: {
            model: { type: 'string' },
            requests: { type: 'integer', minimum: 0 },
            input_tokens: { type: 'integer', minimum: 0 },
            max_output_tokens: { type: 'integer', minimum: 0 },
            requests_without_max_tokens: { type: 'integer', minimum: 0 },
            upstream: nullable('string', {
              description: 'The upstream routing tries first; null: none serves it.',
            }),
            price: refTo('Price'),
            cost: refTo('Cost'),
          },
        },
      },
    },
  },
  Health: {
    type: 'object',
    ...BARGE,
    required: ['status'],
    properties: { status: { const: 'ok' } },
  },
  Readiness: {
    type: 'object',
    ...BARGE,
    required: ['status', 'down', 'checks'],
    properties: {
      status: { enum: ['ok', 'unavailable'] },
      down: { type: 'array', items: { enum: ['postgres', 'minio', 'temporal'] } },
      checks: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          required: ['status'],
          properties: { status: { enum: ['ok', 'down'] }, error: { type: 'string' } },
        },
      },
    },
  },
} satisfies Record<string, Schema>;

export type SchemaName = keyof typeof SCHEMAS;

/** A reference to one of the schemas above, for the controllers' decorators. */
export const ref = (name: SchemaName): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
