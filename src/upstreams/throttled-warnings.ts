import type { Logger } from '../observability/logger';

/** A Logger warning at most once per interval per key (a database outage would flood otherwise). */
export class ThrottledWarnings {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly intervalMs: number,
  ) {}

  warn(key: string, message: string): void {
    const now = Date.now();
    if ((this.last.get(key) ?? 0) + this.intervalMs > now) return;
    this.last.set(key, now);
    this.logger.warn(message);
  }
}
