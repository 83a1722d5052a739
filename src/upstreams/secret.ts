import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A credential that stays out of logs, JSON and error messages by construction: only
 * reveal() yields the value, and it is called only where the request headers are built (the
 * operator's key in registry.ts, a tenant's own key in http-upstream.ts). Everything an
 * upstream says back passes through redact().
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  /** Replaces every occurrence of the secret in `text`. */
  redact(text: string): string {
    return text.includes(this.#value) ? text.split(this.#value).join(REDACTED) : text;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
