import type {
  LogLevel as TemporalLevel,
  LogMetadata,
  Logger as TemporalLoggerContract,
} from '@temporalio/common';
import type { Logger } from './logger';

const LEVELS: Record<TemporalLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Batch workflows are started with the batch id as workflow id (src/batches/start-batch-workflow.ts). */
const BATCH_ID = /^batch_[A-Za-z0-9]+$/;

/**
 * The Temporal Runtime's logger (the SDK's own messages, activity and workflow context
 * loggers, and the core's lines when forwarded) written through pino, so the worker has one
 * JSON format. Temporal's attributes go under `temporal`; a batch workflow's id also becomes
 * `batch_id`, so the SDK's lines about an activity carry the batch like Barge's own do.
 */
export class TemporalLogger implements TemporalLoggerContract {
  constructor(private readonly logger: Logger) {}

  log(level: TemporalLevel, message: string, meta?: LogMetadata): void {
    const method = LEVELS[level] ?? 'info';
    if (!this.logger.isLevelEnabled(method)) return;
    this.logger[method](fieldsOf(meta), message);
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }

  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }

  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }

  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }

  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

function fieldsOf(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  // The task token is an opaque credential-like blob for completing the activity: not for logs.
  const { taskToken: _taskToken, error, failure, ...rest } = meta as Record<string, unknown>;
  const fields: Record<string, unknown> = { temporal: rest };
  const workflowId = rest.workflowId;
  if (typeof workflowId === 'string' && BATCH_ID.test(workflowId)) fields.batch_id = workflowId;
  const err = error ?? failure;
  if (err !== undefined) fields.err = err;
  return fields;
}
