// The registry's gate (a Hono middleware on /v2/*, when client authentication is on): 401 with the token
// flow's challenge for no or bad credentials, 403 DENIED for an authenticated caller without the right,
// 429 while a client address (or user) is over its failed-login limit. GET /v2/ answers 401 to anonymous
// callers, so that `docker login` and `podman login` check the password instead of "succeeding" blindly.
import type { Context, MiddlewareHandler } from 'hono';
import type { IncomingMessage } from 'node:http';
import type { AppEnv } from '../http/env.ts';
import { errorResponse } from '../http/error-response.ts';
import type { NamespaceResolver, Target } from '../namespaces/resolve.ts';
import { OciError } from '../oci/errors.ts';
import type { AuthAction } from '../config/config.ts';
import { accessCovers, challenge, classify, identify, resourceOf, type AuthDeps } from './gate.ts';

export const TOKEN_PATH = '/auth/token';

export function registryAuth(deps: AuthDeps & { readonly resolver: NamespaceResolver }): MiddlewareHandler<AppEnv> {
  return async function registryAuth(c, next) {
    const request = classify(c.req.method, c.req.path);
    const realm = realmOf(c, deps.config.realm);
    const scope = request.kind === 'repository' ? { name: request.name, actions: request.actions } : undefined;
    const unauthorized = (message: string, error?: string) =>
      errorResponse(c, new OciError('UNAUTHORIZED', message, { headers: { 'www-authenticate': challenge(realm, deps.config.service, scope, error) } }));

    const identity = await identify(deps, c.req.header('authorization'), clientAddress(c));
    if (!identity.ok) {
      if (identity.reason === 'throttled') {
        return errorResponse(c, new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', { headers: { 'retry-after': String(identity.retryAfter) } }));
      }
      return unauthorized(identity.reason === 'bad-token' ? 'the token is invalid, expired or revoked' : 'authentication required: wrong user name or password', identity.reason === 'bad-token' ? 'invalid_token' : undefined);
    }
    const { principal } = identity;
    if (principal.kind !== 'anonymous') c.set('user', principal.name);
    const authorize = (target: Target, action: AuthAction) =>
      deps.authorizer.allowed(principal, resourceOf(target), action) && accessCovers(identity.access, target.name, action);
    // The catalog lists what the caller may pull: a catalog token grants no repository, its holder's rights decide.
    c.set('authorize', request.kind === 'catalog' ? (target, action) => deps.authorizer.allowed(principal, resourceOf(target), action) : authorize);

    if (request.kind === 'base' && principal.kind === 'anonymous') return unauthorized('authentication required');
    if (request.kind !== 'repository') return next();
    let target: Target;
    try {
      target = deps.resolver.resolve({ ns: c.req.query('ns'), host: c.req.header('host'), name: request.name });
    } catch {
      return next(); // a name the routes refuse with their own error (NAME_INVALID, NAME_UNKNOWN)
    }
    for (const action of request.actions) {
      if (authorize(target, action)) continue;
      if (principal.kind === 'anonymous') return unauthorized('authentication required');
      // A token for other repositories, held by someone who may do this: the client fetches a new one.
      if (identity.via === 'bearer' && deps.authorizer.allowed(principal, resourceOf(target), action)) {
        return unauthorized(`the token does not grant ${action} on ${request.name}`, 'insufficient_scope');
      }
      return errorResponse(c, new OciError('DENIED', `${principal.kind === 'token' ? 'token' : 'user'} "${principal.name}" may not ${action} ${request.name}`, { detail: { name: request.name, action } }));
    }
    return next();
  };
}

/** The token endpoint's URL: configured, or /auth/token on the host and scheme the client used. */
export function realmOf(c: Context, configured: string | undefined): string {
  if (configured) return configured;
  return `${requestIsTls(c) ? 'https' : 'http'}://${c.req.header('host') ?? 'localhost'}${TOKEN_PATH}`;
}

/** Whether the request came over one of the TLS listeners. */
export function requestIsTls(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming ? 'encrypted' in incoming.socket && Boolean((incoming.socket as { encrypted?: boolean }).encrypted) : new URL(c.req.url).protocol === 'https:';
}

export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket.remoteAddress ?? 'unknown';
}
