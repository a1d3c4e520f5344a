// The registry token endpoint (Docker's token authentication, the flow docker, podman, skopeo, buildah
// and containerd speak): GET with optional Basic credentials, or the OAuth2 password grant POST that
// `docker login` sends. The token grants the intersection of what was asked and what the caller may
// do; asking for more is not an error, the grant is smaller.
import type { Context } from 'hono';
import { Hono } from 'hono';
import type { AuthAction } from '../config/config.ts';
import { checkPassword, identify, resourceOf, type AuthDeps, type Identity } from '../auth/gate.ts';
import { clientAddress, TOKEN_PATH } from '../auth/middleware.ts';
import type { Access } from '../auth/token-service.ts';
import type { AppEnv } from '../http/env.ts';
import type { NamespaceResolver } from '../namespaces/resolve.ts';
import { OciError } from '../oci/errors.ts';

export function tokenRoutes(deps: AuthDeps & { readonly resolver: NamespaceResolver }): Hono<AppEnv> {
  const answer = async (c: Context<AppEnv>, identity: Identity, service: string | undefined, scopes: readonly string[]) => {
    if (!identity.ok) {
      if (identity.reason === 'throttled') throw new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', { headers: { 'retry-after': String(identity.retryAfter) } });
      throw new OciError('UNAUTHORIZED', 'wrong user name or password', { headers: { 'www-authenticate': `Basic realm="${deps.config.service}"` } });
    }
    if (service !== undefined && service !== deps.config.service) throw new OciError('DENIED', `this registry issues tokens for service "${deps.config.service}"`, { status: 400 });
    const { principal } = identity;
    if (principal.kind !== 'anonymous') c.set('user', principal.name);
    const access: Access[] = [];
    for (const scope of scopes.flatMap((s) => s.split(' ')).filter(Boolean)) {
      const parsed = parseScope(scope);
      if (!parsed) continue;
      let target;
      try {
        target = deps.resolver.resolve({ name: parsed.name, host: c.req.header('host') });
      } catch {
        continue; // an impossible name gets nothing
      }
      const granted = parsed.actions.filter((a) => deps.authorizer.allowed(principal, resourceOf(target), a));
      if (granted.length) access.push({ type: 'repository', name: parsed.name, actions: granted });
    }
    const subject = principal.kind === 'anonymous' ? principal : principal.kind === 'token' ? { kind: principal.kind, name: principal.name, createdAt: principal.createdAt } : { kind: principal.kind, name: principal.name };
    const issued = await deps.tokenService.issue(subject, access);
    return c.json({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt });
  };

  return new Hono<AppEnv>()
    .get(TOKEN_PATH, async (c) => {
      c.set('route', 'token');
      const identity = await identify(deps, c.req.header('authorization'), clientAddress(c));
      if (identity.ok && identity.via === 'bearer') throw new OciError('UNAUTHORIZED', 'log in with a user name and password or a token secret', { headers: { 'www-authenticate': `Basic realm="${deps.config.service}"` } });
      return answer(c, identity, c.req.query('service'), c.req.queries('scope') ?? []);
    })
    .post(TOKEN_PATH, async (c) => {
      c.set('route', 'token');
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const field = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : undefined);
      if (field('grant_type') !== 'password') {
        return c.json({ error: 'unsupported_grant_type', error_description: 'only grant_type=password is supported' }, 400);
      }
      const identity = await checkPassword(deps, field('username') ?? '', field('password') ?? '', clientAddress(c));
      return answer(c, identity, field('service'), [field('scope') ?? '']);
    });
}

/** `repository:<name>:<actions>`; other resource types (registry:catalog:*) grant nothing here. */
function parseScope(scope: string): { name: string; actions: AuthAction[] } | undefined {
  const match = /^repository(?:\([^)]*\))?:(.+):([a-z*,]+)$/.exec(scope);
  if (!match) return undefined;
  const actions = match[2]!.split(',').flatMap((a): AuthAction[] => (a === '*' ? ['pull', 'push', 'delete'] : a === 'pull' || a === 'push' || a === 'delete' ? [a] : []));
  return { name: match[1]!, actions: [...new Set(actions)] };
}
