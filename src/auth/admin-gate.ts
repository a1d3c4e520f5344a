// The admin API's gate when client authentication is on: Basic credentials of a user listed in
// auth.admins (the admin listener also stays on loopback by default). Failed logins count against the
// same per-address and per-user limits as the registry's.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { errorResponse } from '../http/error-response.ts';
import { OciError } from '../oci/errors.ts';
import { identify, type AuthDeps } from './gate.ts';
import { clientAddress } from './middleware.ts';

export function adminAuth(deps: AuthDeps): MiddlewareHandler<AppEnv> {
  return async function adminAuth(c, next) {
    const challenge = { 'www-authenticate': 'Basic realm="ocimirror admin"' };
    const identity = await identify(deps, c.req.header('authorization'), clientAddress(c));
    if (!identity.ok && identity.reason === 'throttled') {
      return errorResponse(c, new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', { headers: { 'retry-after': String(identity.retryAfter) } }));
    }
    if (!identity.ok || identity.principal.kind === 'anonymous' || identity.via !== 'basic') {
      return errorResponse(c, new OciError('UNAUTHORIZED', 'the admin API needs an admin user name and password (auth.admins)', { headers: challenge }));
    }
    c.set('user', identity.principal.name);
    if (!deps.authorizer.isAdmin(identity.principal)) {
      return errorResponse(c, new OciError('DENIED', `"${identity.principal.name}" is not an admin (auth.admins)`));
    }
    return next();
  };
}
