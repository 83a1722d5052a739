import pino, { type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

/**
 * One log format for every Barge process (API, worker, simulator): pino's JSON lines, one
 * object per line, with `batch_id`, `tenant_id`, `request_id`, `chunk` and `upstream` fields
 * where they apply; readable colored lines instead when the output is a terminal.
 *
 * Secrets are never logged: pino's redaction removes the places a credential can hide
 * (Authorization and API-key headers, bodies' api_key fields), and upstream keys never reach
 * a log call (src/upstreams/secret.ts keeps them out of strings).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'req.headers["x-barge-provider-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.apiKey',
  '*.api_key',
  '*.secret',
  '*.password',
  'apiKey',
  'api_key',
];

export interface LoggerSettings {
  name: string;
  level: LogLevel;
  /** Readable lines: by default when stdout is a terminal. */
  pretty?: boolean;
  /** Where lines go (tests capture them); stdout by default. */
  destination?: NodeJS.WritableStream;
}

export function loggerOptions(settings: Pick<LoggerSettings, 'name' | 'level'>): LoggerOptions {
  return {
    name: settings.name,
    level: settings.level,
    base: { process: settings.name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
}

export function createLogger(settings: LoggerSettings): Logger {
  const options = loggerOptions(settings);
  const destination = settings.destination ?? process.stdout;
  const readable = settings.pretty ?? Boolean((destination as { isTTY?: boolean }).isTTY);
  if (readable) {
    return pino(
      options,
      pretty({ colorize: true, destination: destination as NodeJS.WritableStream, sync: true }),
    );
  }
  return pino(options, destination as pino.DestinationStream);
}

export type { Logger };

/**
 * Node's process warnings (deprecations, a dependency's notices) as log lines of `logger`
 * instead of text on stderr, so the process writes one format.
 */
export function logProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => logger.warn({ err: warning }, `${warning.name}: ${warning.message}`));
}
