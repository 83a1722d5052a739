import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { BargeConfig } from '../config/config';
import { createLogger } from './logger';
import { clientRequestIdOf, newRequestId } from './request-id';

/** Not logged per request: probes and scrapes would drown the lines that matter. */
const QUIET_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

type Req = IncomingMessage & { id?: unknown; originalUrl?: string; route?: { path?: string } };

/**
 * nestjs-pino's settings for the API: the one pino logger (JSON, redaction, level from
 * configuration), one line per request when it is answered, and the request id on every line
 * about a request (`request_id`, with `client_request_id` and `tenant_id` when known). No
 * header is logged: only method, path and status.
 */
export function apiLoggerParams(config: BargeConfig, tenantOf: (req: object) => string | null): Params {
  return {
    pinoHttp: {
      logger: createLogger({ name: 'barge-api', level: config.logLevel }),
      // assignRequestIds (the first middleware) has given the request its id already.
      genReqId: (req: Req) => (typeof req.id === 'string' ? req.id : newRequestId()),
      customAttributeKeys: { reqId: 'request_id', responseTime: 'duration_ms' },
      quietReqLogger: true,
      customProps: (req: Req) => {
        const props: Record<string, string> = {};
        const client = clientRequestIdOf(req);
        if (client) props.client_request_id = client;
        const tenant = tenantOf(req);
        if (tenant) props.tenant_id = tenant;
        return props;
      },
      serializers: {
        req: (req: { method?: string; url?: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode?: number }) => ({ status_code: res.statusCode }),
      },
      autoLogging: { ignore: (req: Req) => QUIET_PATHS.has((req.url ?? '').split('?')[0]) },
      customLogLevel: (_req: IncomingMessage, res: ServerResponse, error?: Error) =>
        error || res.statusCode >= 500 ? 'error' : 'info',
      customSuccessMessage: (req: Req, res: ServerResponse) =>
        `${req.method} ${(req.originalUrl ?? req.url ?? '').split('?')[0]} ${res.statusCode}`,
      customErrorMessage: (req: Req, res: ServerResponse) =>
        `${req.method} ${(req.originalUrl ?? req.url ?? '').split('?')[0]} ${res.statusCode}`,
    },
  };
}
