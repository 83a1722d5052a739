/**
 * Runs `round` every `intervalMs`, never two at once: a tick that finds the last round still
 * running is skipped. A failed round goes to `onError`, and the next one runs as planned. The
 * timer never keeps the process alive; `stop` waits for a round in progress.
 */
export class PeriodicRound {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly round: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Starts the timer; `immediately`: a first round now rather than after one interval. */
  start({ immediately }: { immediately: boolean }): void {
    this.timer = setInterval(() => this.trigger(), this.intervalMs).unref();
    if (immediately) this.trigger();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private trigger(): void {
    this.running ??= this.round()
      .then(
        () => undefined,
        (err: Error) => this.onError(err),
      )
      .finally(() => (this.running = undefined));
  }
}
