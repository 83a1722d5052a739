/** The endpoints a batch may target, and the body field each one cannot do without. */
export const BATCH_ENDPOINTS = {
  '/v1/chat/completions': { requires: 'messages', modelRequired: true },
  '/v1/completions': { requires: 'prompt', modelRequired: true },
  '/v1/embeddings': { requires: 'input', modelRequired: true },
  '/v1/responses': { requires: 'input', modelRequired: true },
  '/v1/moderations': { requires: 'input', modelRequired: false },
} as const;

export type BatchEndpoint = keyof typeof BATCH_ENDPOINTS;

export const isBatchEndpoint = (value: unknown): value is BatchEndpoint =>
  typeof value === 'string' && Object.hasOwn(BATCH_ENDPOINTS, value);

/** OpenAI's moderation endpoint picks its model when none is given. */
export const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest';
