/** Where the CLI writes: stdout for results, stderr for everything meant for a human. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** stdout without a newline, to redraw a progress line in place. */
  write?(text: string): void;
  /** Set when stdout is a terminal (else output degrades to plain lines). */
  tty?: { readonly columns: number };
  /**
   * What stdin holds: one line typed at a terminal (after `prompt` on stderr, not echoed), or
   * everything piped in. For secrets, which must never be command-line arguments.
   */
  readStdin?(prompt: string): Promise<string>;
}

/** Bad command-line usage: the message and the usage text are printed, exit code 2. */
export class UsageError extends Error {}
