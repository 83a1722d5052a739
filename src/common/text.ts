/**
 * Rules for tenant-supplied text, in one place.
 *
 * Postgres cannot store U+0000 in `text` or `jsonb`, and refuses a lone UTF-16 surrogate
 * (JavaScript strings may hold one; UTF-8 cannot encode it). Every string a tenant sends that
 * reaches SQL as a value of its own (ids, query parameters, metadata, Idempotency-Key, the
 * JSONL fields Barge writes) is checked with `unstorableText` at the boundary and refused
 * there with a 400 naming it, instead of failing later as a 500 or a stuck batch.
 * Request bodies are different: they are stored as finished JSON text, where a NUL is the
 * escape `\u0000` and is legitimate, so they are not refused.
 */

/** NUL, or a surrogate that is not half of a pair. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What is wrong with `value` for Postgres, or null when it can be stored. */
export function unstorableText(value: string): 'nul' | 'lone_surrogate' | null {
  const match = UNSTORABLE.exec(value);
  if (!match) return null;
  return match[0] === '\u0000' ? 'nul' : 'lone_surrogate';
}

/** A human description of `unstorableText`'s verdict, for error messages. */
export function describeUnstorable(problem: 'nul' | 'lone_surrogate'): string {
  return problem === 'nul' ? 'a NUL character (U+0000)' : 'an unpaired UTF-16 surrogate';
}

/** Characters of a tenant's value echoed in an error message at most. */
export const MAX_ECHO_CHARS = 256;

/**
 * A tenant's value as it may appear in an error message: at most MAX_ECHO_CHARS characters
 * (whole code points) with an ellipsis when cut, and with characters that cannot be stored or
 * would break a log line shown as escapes (which count towards the limit). Every echo of input
 * in an error goes through this, so an error message is bounded whatever the input; it reads
 * no more of the value than it shows.
 */
export function echo(value: unknown, max = MAX_ECHO_CHARS): string {
  const text = typeof value === 'string' ? value : safeStringify(value);
  let out = '';
  let shown = 0;
  for (const char of text) {
    // eslint-disable-next-line no-control-regex
    const escaped = /^[\u0000-\u001f\u007f\ud800-\udfff]$/u.test(char);
    const piece = escaped ? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}` : char;
    // Code points shown: an escape counts as the six characters it is.
    const width = escaped ? piece.length : 1;
    if (shown + width > max) return `${out}…`;
    out += piece;
    shown += width;
  }
  return out;
}

/** Never throws: a value too deep for JSON.stringify (or String, for arrays) is named by its kind. */
function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    if (Array.isArray(value)) return '[array]';
    return typeof value === 'object' && value !== null ? '[object]' : typeof value;
  }
}
