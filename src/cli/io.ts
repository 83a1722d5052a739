/** Where the CLI writes: stdout for results, stderr for everything meant for a human. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

/** Bad command-line usage: the message and the usage text are printed, exit code 2. */
export class UsageError extends Error {}
