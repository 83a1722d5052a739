import { createParamDecorator, ExecutionContext } from '@nestjs/common';

/** The tenant a request was authenticated as. */
export interface AuthenticatedTenant {
  id: string;
  name: string;
  /**
   * An admin key (an operator's): it reads every tenant's batches and usage, and is refused
   * everywhere else (ApiKeyGuard), so it never acts as the tenant it is recorded under.
   */
  admin?: boolean;
}

/** The tenant whose objects a request may read: null for an admin key, which reads every tenant's. */
export const readScope = (tenant: AuthenticatedTenant): string | null => (tenant.admin ? null : tenant.id);

// Keyed by the request object itself, so nothing needs to widen Express's Request type.
const tenants = new WeakMap<object, AuthenticatedTenant>();

/** Called by ApiKeyGuard once the key checks out. */
export function attachTenant(request: object, tenant: AuthenticatedTenant): void {
  tenants.set(request, tenant);
}

/** The tenant `request` was authenticated as, if it was. */
export function tenantOf(request: object): AuthenticatedTenant | undefined {
  return tenants.get(request);
}

/** Injects the authenticated tenant into a handler of a controller guarded by ApiKeyGuard. */
export const CurrentTenant = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuthenticatedTenant => {
    const tenant = tenants.get(context.switchToHttp().getRequest<object>());
    // A programming error, not a client one: the route lacks @UseGuards(ApiKeyGuard).
    if (!tenant) throw new Error('CurrentTenant() used on a route that ApiKeyGuard does not protect');
    return tenant;
  },
);
