import type { PipeTransform } from '@nestjs/common';
import { invalidRequest, OpenAIError } from './openai-error';
import { describeUnstorable, echo, unstorableText } from './text';

/**
 * The boundary rule for tenant-supplied strings that reach SQL or JSONB (see common/text.ts),
 * in one place: query parameters, body fields, form fields and headers go through
 * `requireStorable` (400 naming the parameter); path ids through `PathIdPipe` (the
 * resource's own 404, since no object can have such an id).
 */

/** `value`, or a 400 `invalid_text` naming `param` when Postgres could not store it. */
export function requireStorable(value: string, param: string): string {
  const problem = unstorableText(value);
  if (problem) {
    throw invalidRequest(
      `Invalid '${echo(param)}': the value contains ${describeUnstorable(problem)}, which is not allowed here.`,
      param,
      'invalid_text',
    );
  }
  return value;
}

/** Longest id Barge ever issues is 30 characters; this leaves room for ids chosen elsewhere. */
export const MAX_ID_LENGTH = 128;

/**
 * Whether `value` could be the id of some object: 1 to MAX_ID_LENGTH printable ASCII
 * characters. Anything else is answered like an unknown id without asking the database, which
 * also keeps every echo of an id short and plain.
 */
export function isIdShaped(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ID_LENGTH && /^[\x21-\x7e]+$/.test(value);
}

/**
 * `@Param('id', new PathIdPipe(fileNotFound))`: a path id that cannot be any object's id (NUL,
 * a lone surrogate, control characters, too long) answers exactly like an unknown one.
 */
export class PathIdPipe implements PipeTransform<unknown, string> {
  constructor(private readonly notFound: (id: string) => OpenAIError) {}

  transform(value: unknown): string {
    if (typeof value !== 'string' || !isIdShaped(value)) throw this.notFound(String(value));
    return value;
  }
}
