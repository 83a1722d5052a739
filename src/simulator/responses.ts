/**
 * Deterministic, OpenAI-shaped answers. The content of every answer is a pure function of
 * the request content (model, prompt, parameters), so tests can compare runs; ids and
 * timestamps are unique per response like the real API's.
 */
import { randomBytes } from 'node:crypto';
import { mulberry32, normal } from './latency';

export type JsonObject = Record<string, unknown>;

// ---------------------------------------------------------------------------------------
// Errors

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A failure to report in OpenAI's error envelope; thrown by validation, caught by the server. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ErrorEnvelope {
    return errorEnvelope(this.status, this.message, this.param, this.code);
  }
}

/** The four keys are always present: clients read `error.code` without checking for it. */
export function errorEnvelope(
  status: number,
  message?: string,
  param: string | null = null,
  code: string | null = null,
  type?: string,
): ErrorEnvelope {
  type ??= defaultType(status);
  if (status === 429) code ??= 'rate_limit_exceeded';
  return { error: { message: message ?? defaultMessage(status), type, param, code } };
}

function defaultType(status: number): string {
  if (status >= 500) return 'server_error';
  if (status === 429) return 'requests';
  if (status === 401) return 'authentication_error';
  return 'invalid_request_error';
}

function defaultMessage(status: number): string {
  switch (status) {
    case 429:
      return 'Rate limit reached for requests (simulated). Please retry after the Retry-After delay.';
    case 500:
      return 'The server had an error while processing your request. Sorry about that! (simulated)';
    case 503:
      return 'The engine is currently overloaded, please try again later. (simulated)';
    default:
      return `Simulated failure (HTTP ${status}).`;
  }
}

const invalid = (message: string, param: string, code: string | null = null): ApiError =>
  new ApiError(400, message, param, code);

// ---------------------------------------------------------------------------------------
// Hashing, ids, tokens

/** FNV-1a over UTF-16 code units: enough spread to pick fillers and seed vectors. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Murmur3's finalizer: derives well-spread sub-seeds (one per choice) from one hash. */
function mix(h: number, salt: number): number {
  h = (h ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// A random per-process prefix plus a counter: unique without paying for randomness per id.
const ID_PREFIX = randomBytes(6).toString('hex');
let idCounter = 0;

export function newId(prefix: string): string {
  return `${prefix}${ID_PREFIX}${(++idCounter).toString(16).padStart(12, '0')}`;
}

/** The simulator's tokenizer: about four characters per token, like English text in practice. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Flat input cost of an image, like a low-detail image in the real API. */
const IMAGE_TOKENS = 85;

const REASONING_TOKENS: Record<string, number> = { none: 0, minimal: 0, low: 64, medium: 192, high: 512 };

function reasoningTokens(effort: unknown, param: string): number {
  if (effort === undefined || effort === null) return 0;
  const tokens = typeof effort === 'string' ? REASONING_TOKENS[effort] : undefined;
  if (tokens === undefined) {
    throw invalid(
      `Invalid value for '${param}': expected one of ${Object.keys(REASONING_TOKENS).join(', ')}.`,
      param,
    );
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Request content

/** Everything an answer depends on, gathered while walking the request's input. */
class Prompt {
  private readonly texts: string[] = [];
  chars = 0;
  images = 0;
  /** The text the answer quotes: the last user turn, or the last text seen. */
  focus = '';

  addText(text: string, isFocus = true): void {
    this.texts.push(text);
    this.chars += text.length;
    if (isFocus && text.trim() !== '') this.focus = text;
  }

  tokens(): number {
    return estimateTokens(this.chars) + this.images * IMAGE_TOKENS;
  }

  hash(model: string, extra = ''): number {
    return hashString(`${model}\u0000${extra}\u0000${this.texts.join('\u0000')}`);
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((t) => Number.isInteger(t));
}

/** Reads an optional integer parameter, rejecting anything OpenAI would reject. */
function intParam(body: JsonObject, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`Invalid '${key}': expected an integer between ${min} and ${max}.`, key, 'invalid_value');
  }
  return value;
}

/** Text of a message's `content`: a string, or an array of typed parts (text, images, audio...). */
function addContent(prompt: Prompt, content: unknown, param: string, isFocus: boolean): void {
  if (typeof content === 'string') {
    prompt.addText(content, isFocus);
  } else if (Array.isArray(content)) {
    content.forEach((part, i) => {
      if (!isObject(part))
        throw invalid(`Invalid type for '${param}[${i}]': expected an object.`, `${param}[${i}]`);
      if (typeof part.text === 'string') prompt.addText(part.text, isFocus);
      else if (typeof part.type === 'string' && part.type.includes('image')) prompt.images++;
    });
  } else if (content !== null && content !== undefined) {
    throw invalid(`Invalid type for '${param}': expected a string or an array of content parts.`, param);
  }
}

/** Shortens to a quotable one-liner. */
function snippet(text: string, max = 60): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return 'your request';
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}

const FILLERS = [
  'This reply comes from the Barge upstream simulator.',
  'No language model was consulted to write it.',
  'The same request always gets the same reply.',
  'Token counts are estimated at about four characters per token.',
  'Latency and failures can be injected with the simulate field.',
  'Everything here is synthetic and safe to discard.',
  'Batch results stay reproducible from run to run.',
  'A real upstream would have something more insightful to say.',
];

/** The visible answer for one choice: a quote of the prompt plus one to three filler sentences. */
function answerText(lead: string, focus: string, seed: number): string {
  const parts = [`${lead} "${snippet(focus)}".`];
  const count = 1 + (seed % 3);
  // Consecutive fillers from a seeded start: varied, never the same sentence twice.
  const start = mix(seed, 0) % FILLERS.length;
  for (let i = 0; i < count; i++) parts.push(FILLERS[(start + i) % FILLERS.length]);
  return parts.join(' ');
}

/** Applies a max-token limit the way the API does: cut the text, report `length`. */
function limit(
  text: string,
  maxTokens: number | undefined,
): { text: string; tokens: number; truncated: boolean } {
  const tokens = estimateTokens(text.length);
  if (maxTokens === undefined || tokens <= maxTokens) return { text, tokens, truncated: false };
  return { text: text.slice(0, maxTokens * 4), tokens: maxTokens, truncated: true };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

const SYSTEM_FINGERPRINT = 'fp_barge_sim';

// ---------------------------------------------------------------------------------------
// Endpoints

export interface Endpoint {
  /** Used when the request names no model; absent means `model` is required. */
  defaultModel?: string;
  build(body: JsonObject, model: string): object;
}

/** The model a request is for; validated before anything else so stats can be kept per model. */
export function requestModel(body: JsonObject, endpoint: Endpoint): string {
  const model = body.model;
  if (model === undefined || model === null) {
    if (endpoint.defaultModel !== undefined) return endpoint.defaultModel;
    throw invalid('you must provide a model parameter', 'model', 'missing_required_parameter');
  }
  if (typeof model !== 'string' || model === '') {
    throw invalid("Invalid type for 'model': expected a non-empty string.", 'model', 'invalid_type');
  }
  return model;
}

function rejectStreaming(body: JsonObject): void {
  if (body.stream === true) {
    throw invalid(
      'The simulator does not stream; send the request without "stream": true.',
      'stream',
      'unsupported_value',
    );
  }
}

const chatCompletions: Endpoint = {
  build(body, model) {
    rejectStreaming(body);
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw invalid("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
    }
    const prompt = new Prompt();
    messages.forEach((message, i) => {
      if (!isObject(message) || typeof message.role !== 'string') {
        throw invalid(
          `Invalid 'messages[${i}]': expected an object with a 'role'.`,
          `messages[${i}]`,
          'invalid_type',
        );
      }
      // Later non-user turns still count as input, but the answer quotes the user.
      addContent(
        prompt,
        message.content,
        `messages[${i}].content`,
        message.role === 'user' || prompt.focus === '',
      );
    });
    const n = intParam(body, 'n', 1, 128) ?? 1;
    const maxTokens =
      intParam(body, 'max_completion_tokens', 1, 1_000_000) ?? intParam(body, 'max_tokens', 1, 1_000_000);
    const reasoning = reasoningTokens(body.reasoning_effort, 'reasoning_effort');
    const hash = prompt.hash(model, `${maxTokens}`);

    let completionTokens = 0;
    const choices = [];
    for (let index = 0; index < n; index++) {
      const out = limit(answerText('Simulated answer to:', prompt.focus, mix(hash, index)), maxTokens);
      completionTokens += out.tokens + reasoning;
      choices.push({
        index,
        message: { role: 'assistant', content: out.text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: out.truncated ? 'length' : 'stop',
      });
    }
    const promptTokens = prompt.tokens();
    return {
      id: newId('chatcmpl-'),
      object: 'chat.completion',
      created: nowSeconds(),
      model,
      choices,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: reasoning * n,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      },
      service_tier: 'default',
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  },
};

/** `prompt` / `input` as the legacy endpoints accept it: text, texts, tokens or token lists. */
function textInputs(value: unknown, param: string): string[] {
  const describe = (tokens: number[]): string => `[${tokens.length} tokens: ${tokens.slice(0, 8).join(' ')}]`;
  if (typeof value === 'string') return [value];
  if (isTokenArray(value)) return [describe(value)];
  if (Array.isArray(value) && value.length > 0) {
    return value.map((item, i) => {
      if (typeof item === 'string') return item;
      if (isTokenArray(item)) return describe(item);
      throw invalid(
        `Invalid type for '${param}[${i}]': expected a string or an array of tokens.`,
        `${param}[${i}]`,
        'invalid_type',
      );
    });
  }
  if (value === undefined || value === null) {
    throw invalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  }
  throw invalid(`Invalid type for '${param}': expected a string or an array.`, param, 'invalid_type');
}

/** Token count of one legacy input: a token list counts exactly, text by estimate. */
function inputTokens(value: unknown, index: number, text: string): number {
  const item = Array.isArray(value) && !isTokenArray(value) ? value[index] : value;
  return isTokenArray(item) ? item.length : estimateTokens(text.length);
}

const completions: Endpoint = {
  build(body, model) {
    rejectStreaming(body);
    const prompts = textInputs(body.prompt, 'prompt');
    const n = intParam(body, 'n', 1, 128) ?? 1;
    const maxTokens = intParam(body, 'max_tokens', 0, 1_000_000) ?? 16;
    const echo = body.echo === true;
    let promptTokens = 0;
    let completionTokens = 0;
    const choices = [];
    for (let p = 0; p < prompts.length; p++) {
      const text = prompts[p];
      promptTokens += inputTokens(body.prompt, p, text);
      const hash = hashString(`${model}\u0000${maxTokens}\u0000${text}`);
      for (let j = 0; j < n; j++) {
        const out = limit(` ${answerText('Simulated completion of:', text, mix(hash, j))}`, maxTokens);
        completionTokens += out.tokens;
        choices.push({
          text: echo ? text + out.text : out.text,
          index: p * n + j,
          logprobs: null,
          finish_reason: out.truncated ? 'length' : 'stop',
        });
      }
    }
    return {
      id: newId('cmpl-'),
      object: 'text_completion',
      created: nowSeconds(),
      model,
      choices,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  },
};

/** A unit vector seeded by the text, so equal texts embed equally and different texts almost never do. */
export function embeddingVector(model: string, text: string, dimensions: number): Float32Array {
  const random = mulberry32(hashString(`${model}\u0000${text}`));
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = normal(random);
    vector[i] = x;
    norm += x * x;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) vector[i] *= scale;
  return vector;
}

const embeddings: Endpoint = {
  build(body, model) {
    const inputs = textInputs(body.input, 'input');
    if (inputs.length > 2048)
      throw invalid("Invalid 'input': at most 2048 inputs per request.", 'input', 'invalid_value');
    inputs.forEach((text, i) => {
      if (text === '') throw invalid(`Invalid 'input[${i}]': must not be empty.`, 'input', 'invalid_value');
    });
    const dimensions = intParam(body, 'dimensions', 1, 8192) ?? 64;
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw invalid(
        "Invalid 'encoding_format': expected 'float' or 'base64'.",
        'encoding_format',
        'invalid_value',
      );
    }
    let promptTokens = 0;
    const data = inputs.map((text, index) => {
      promptTokens += inputTokens(body.input, index, text);
      const vector = embeddingVector(model, text, dimensions);
      // base64 is little-endian float32, which is what the official SDKs send by default and decode.
      const embedding =
        format === 'base64'
          ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
          : Array.from(vector);
      return { object: 'embedding', index, embedding };
    });
    return {
      object: 'list',
      data,
      model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  },
};

const responses: Endpoint = {
  build(body, model) {
    rejectStreaming(body);
    const prompt = new Prompt();
    const instructions = body.instructions;
    if (instructions !== undefined && instructions !== null && typeof instructions !== 'string') {
      throw invalid("Invalid type for 'instructions': expected a string.", 'instructions', 'invalid_type');
    }
    if (typeof instructions === 'string') prompt.addText(instructions, false);
    const input = body.input;
    if (typeof input === 'string') {
      prompt.addText(input);
    } else if (Array.isArray(input) && input.length > 0) {
      input.forEach((item, i) => {
        if (!isObject(item))
          throw invalid(`Invalid type for 'input[${i}]': expected an object.`, `input[${i}]`, 'invalid_type');
        const isUser = item.role === 'user' || prompt.focus === '';
        if (item.content !== undefined) addContent(prompt, item.content, `input[${i}].content`, isUser);
        // Tool results (function_call_output) carry their text in `output`.
        if (typeof item.output === 'string') prompt.addText(item.output, false);
      });
    } else if (input === undefined || input === null) {
      throw invalid("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
    } else {
      throw invalid(
        "Invalid type for 'input': expected a string or an array of input items.",
        'input',
        'invalid_type',
      );
    }
    const maxOutputTokens = intParam(body, 'max_output_tokens', 1, 1_000_000);
    const reasoningParam = isObject(body.reasoning) ? body.reasoning : {};
    const reasoning = reasoningTokens(reasoningParam.effort, 'reasoning.effort');
    const hash = prompt.hash(model, `${maxOutputTokens}`);
    const out = limit(answerText('Simulated answer to:', prompt.focus, mix(hash, 0)), maxOutputTokens);
    const inputTokens = prompt.tokens();
    const outputTokens = out.tokens + reasoning;
    return {
      id: newId('resp_'),
      object: 'response',
      created_at: nowSeconds(),
      status: out.truncated ? 'incomplete' : 'completed',
      background: false,
      error: null,
      incomplete_details: out.truncated ? { reason: 'max_output_tokens' } : null,
      instructions: instructions ?? null,
      max_output_tokens: maxOutputTokens ?? null,
      model,
      output: [
        {
          type: 'message',
          id: newId('msg_'),
          status: out.truncated ? 'incomplete' : 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: out.text, annotations: [], logprobs: [] }],
        },
      ],
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort: reasoningParam.effort ?? null, summary: null },
      service_tier: 'default',
      store: body.store ?? true,
      temperature: body.temperature ?? 1,
      text: body.text ?? { format: { type: 'text' } },
      tool_choice: body.tool_choice ?? 'auto',
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      truncation: body.truncation ?? 'disabled',
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: reasoning },
        total_tokens: inputTokens + outputTokens,
      },
      user: body.user ?? null,
      metadata: body.metadata ?? {},
    };
  },
};

const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;

const IMAGE_CATEGORIES = new Set([
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'violence',
  'violence/graphic',
]);

/**
 * Scores are tiny unless the text carries a marker like `[flag:violence]`: real content
 * never flags by accident, and tests can still flag exactly what they want.
 */
function moderate(model: string, prompt: Prompt, text: string): object {
  const hash = prompt.hash(model);
  const types = [...(prompt.chars > 0 ? ['text'] : []), ...(prompt.images > 0 ? ['image'] : [])];
  const categories: Record<string, boolean> = {};
  const scores: Record<string, number> = {};
  const applied: Record<string, string[]> = {};
  let flagged = false;
  MODERATION_CATEGORIES.forEach((category, i) => {
    const unit = mix(hash, i) / 4294967296;
    const hit = text.includes(`[flag:${category}]`);
    categories[category] = hit;
    scores[category] = hit ? 0.9 + unit * 0.0999 : 1e-6 + unit * 1e-3;
    applied[category] = IMAGE_CATEGORIES.has(category) ? types : types.filter((t) => t === 'text');
    flagged ||= hit;
  });
  return { flagged, categories, category_scores: scores, category_applied_input_types: applied };
}

const moderations: Endpoint = {
  defaultModel: 'omni-moderation-latest',
  build(body, model) {
    const input = body.input;
    const results = [];
    // An array of typed parts (text and images) is one multimodal input, not several texts.
    if (Array.isArray(input) && input.length > 0 && input.every(isObject)) {
      const prompt = new Prompt();
      addContent(prompt, input, 'input', true);
      results.push(
        moderate(
          model,
          prompt,
          input.map((part) => (typeof part.text === 'string' ? part.text : '')).join('\n'),
        ),
      );
    } else {
      for (const text of textInputs(input, 'input')) {
        const prompt = new Prompt();
        prompt.addText(text);
        results.push(moderate(model, prompt, text));
      }
    }
    return { id: newId('modr-'), model, results };
  },
};

export const ENDPOINTS: Readonly<Record<string, Endpoint>> = {
  '/v1/chat/completions': chatCompletions,
  '/v1/completions': completions,
  '/v1/embeddings': embeddings,
  '/v1/responses': responses,
  '/v1/moderations': moderations,
};

/** Models listed by GET /v1/models besides those already requested; any model name is served. */
export const LISTED_MODELS = [
  'gpt-4o-mini',
  'gpt-4o',
  'gpt-4.1-mini',
  'gpt-5-mini',
  'gpt-3.5-turbo-instruct',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'omni-moderation-latest',
];

// Fixed so that listing models is deterministic too.
const MODEL_CREATED = 1_700_000_000;

export function modelObject(id: string): object {
  return { id, object: 'model', created: MODEL_CREATED, owned_by: 'barge-simulator' };
}
