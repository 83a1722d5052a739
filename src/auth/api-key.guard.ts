import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { forbidden, unauthorized } from '../common/openai-error';
import { bearerToken, isWellFormedApiKey, maskApiKey } from './api-key';
import { ApiKeyStore } from './api-key-store';
import { attachTenant, tenantOf } from './current-tenant.decorator';

const NO_KEY =
  "You didn't provide an API key. You need to provide your API key in an Authorization header " +
  'using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). Operators create keys with `barge keys create`.';

/**
 * Paths anyone may call: the health checks that load balancers and orchestrators poll, the
 * metrics Prometheus scrapes (their own token, if any: src/observability/metrics.controller.ts),
 * the API's description, and the pages of the console and the docs (static files holding no
 * data: the console's script calls /v1 with the key the user signs in with).
 */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics', '/v1/openapi.json']);
const PUBLIC_PREFIXES = ['/console', '/docs'];

const isPublic = (path: string) => {
  const p = path.toLowerCase().replace(/\/+$/, '');
  return PUBLIC_PATHS.has(p) || PUBLIC_PREFIXES.some((prefix) => p === prefix || p.startsWith(`${prefix}/`));
};

/** What an admin key may call: reading batches (any tenant's) and usage; nothing that acts. */
const ADMIN_PATHS = [/^\/v1\/batches(\/[^/]+)?\/?$/, /^\/v1\/usage\/?$/];
const adminMayCall = (method: string, path: string) =>
  (method === 'GET' || method === 'HEAD') && ADMIN_PATHS.some((p) => p.test(path));

/**
 * Admits requests carrying a live API key (`Authorization: Bearer sk-barge-...`) and records
 * their tenant for CurrentTenant(). It runs twice over: as Express middleware ahead of every
 * body parser (main.ts), so nothing of an unauthenticated request's body is read, and as the
 * guard every /v1 controller declares (@UseGuards(ApiKeyGuard)), which then only confirms the
 * tenant the middleware found (or authenticates itself where the middleware is not installed).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly logger = new Logger('auth');

  constructor(private readonly keys: ApiKeyStore) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    if (!tenantOf(request)) await this.authenticate(request);
    return true;
  }

  /** Express middleware: authenticates every request but the public health checks. */
  middleware(): RequestHandler {
    return (req: Request, _res: Response, next: NextFunction) => {
      if (isPublic(req.path)) return next();
      this.authenticate(req).then(() => next(), next);
    };
  }

  private async authenticate(request: Request): Promise<void> {
    const secret = bearerToken(request.headers.authorization);
    if (!secret) throw unauthorized(NO_KEY);
    // Something that cannot be a key is refused without a database round trip.
    const found = isWellFormedApiKey(secret) ? await this.keys.authenticate(secret) : null;
    // Unknown and revoked keys get the same answer: nothing tells a caller which it was.
    if (!found) throw unauthorized(`Incorrect API key provided: ${maskApiKey(secret)}.`);
    if (found.tenant.admin && !adminMayCall(request.method, request.path)) {
      throw forbidden(
        'This is an admin key: it reads batches (GET /v1/batches) and usage (GET /v1/usage) of every ' +
          'tenant, and cannot be used as a tenant key. Use a tenant key for this request.',
        'admin_key_not_allowed',
      );
    }
    attachTenant(request, found.tenant);
    // Bookkeeping only: a failure must not fail the request, nor delay it.
    this.keys
      .touch(found.keyId)
      .catch((err: Error) => this.logger.warn(`could not record use of key ${found.keyId}: ${err.message}`));
  }
}
