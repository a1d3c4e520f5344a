// Who is asking, and what a /v2/ request asks for: the Authorization header as a principal (Bearer JWT
// from our token endpoint, or Basic with a user's password or a scoped token's secret), the request as a
// repository name and actions, a routing target as the authorizer's resource.
import type { AuthAction, AuthConfig } from '../config/config.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { Logger } from '../observability/logger.ts';
import type { Authorizer, Principal, Resource } from './authorizer.ts';
import type { HtpasswdUsers } from './htpasswd.ts';
import type { LoginLimiter } from './rate-limit.ts';
import type { ScopedTokens } from './scoped-tokens.ts';
import type { Access, Subject, TokenService } from './token-service.ts';

export interface AuthDeps {
  readonly config: AuthConfig;
  readonly users: HtpasswdUsers | undefined;
  readonly tokens: ScopedTokens;
  readonly tokenService: TokenService;
  readonly authorizer: Authorizer;
  readonly limiter: LoginLimiter;
  readonly logger: Logger;
}

export type Identity =
  | { readonly ok: true; readonly principal: Principal; readonly via: 'none' | 'basic' | 'bearer'; readonly access?: readonly Access[] }
  | { readonly ok: false; readonly reason: 'throttled'; readonly retryAfter: number }
  | { readonly ok: false; readonly reason: 'bad-credentials' | 'bad-token' };

/** Checks the credentials of a request from `address`; failed logins are counted and logged (never the secret). */
export async function identify(deps: AuthDeps, header: string | undefined, address: string): Promise<Identity> {
  if (!header) return { ok: true, principal: { kind: 'anonymous' }, via: 'none' };
  const [scheme, value = ''] = header.trim().split(/\s+/, 2) as [string, string | undefined];
  if (/^bearer$/i.test(scheme)) {
    const verified = await deps.tokenService.verify(value);
    const principal = verified && (await currentPrincipal(deps, verified.subject));
    if (!verified || !principal) return { ok: false, reason: 'bad-token' };
    return { ok: true, principal, via: 'bearer', access: verified.access };
  }
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ok: false, reason: 'bad-credentials' };
    return checkPassword(deps, decoded.slice(0, colon), decoded.slice(colon + 1), address);
  }
  return { ok: false, reason: 'bad-credentials' };
}

/** A user's password or a scoped token's secret (the token's name as user), rate-limited per address and user. */
export async function checkPassword(deps: AuthDeps, user: string, password: string, address: string): Promise<Identity> {
  const retryAfter = deps.limiter.retryAfter(address, user);
  if (retryAfter > 0) {
    deps.logger.warn({ user: user.slice(0, 100), address, retry_after_s: retryAfter }, 'login refused: too many failures');
    return { ok: false, reason: 'throttled', retryAfter };
  }
  const token = await deps.tokens.verify(user, password);
  if (token) return { ok: true, principal: { kind: 'token', name: token.name, repos: token.repos, actions: token.actions, createdAt: token.createdAt }, via: 'basic' };
  if (deps.users && (await deps.users.verify(user, password))) return { ok: true, principal: { kind: 'user', name: user }, via: 'basic' };
  deps.limiter.failed(address, user);
  deps.logger.warn({ user: user.slice(0, 100), address }, 'login failed');
  return { ok: false, reason: 'bad-credentials' };
}

/** The principal a token was issued to, as it is now: a removed user or a revoked token is nobody. */
async function currentPrincipal(deps: AuthDeps, subject: Subject): Promise<Principal | undefined> {
  if (subject.kind === 'anonymous') return { kind: 'anonymous' };
  if (subject.kind === 'user') return deps.users?.has(subject.name) ? { kind: 'user', name: subject.name } : undefined;
  const token = await deps.tokens.lookup(subject.name);
  // Another token of the same name (removed and created again) is not the one this JWT was issued from.
  if (!token || token.createdAt !== subject.createdAt) return undefined;
  return { kind: 'token', name: token.name, repos: token.repos, actions: token.actions, createdAt: token.createdAt };
}

/** What a /v2/ request asks for. */
export type RegistryRequest =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'repository'; readonly name: string; readonly actions: readonly AuthAction[] }
  | { readonly kind: 'other' };

const REPOSITORY_PATH = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.*)$/;

export function classify(method: string, path: string): RegistryRequest {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  const match = REPOSITORY_PATH.exec(path);
  if (!match) return { kind: 'other' };
  const [, name, family, rest] = match as unknown as [string, string, string, string];
  const read = method === 'GET' || method === 'HEAD';
  let actions: AuthAction[];
  if (family === 'blobs' && rest.startsWith('uploads')) actions = ['pull', 'push'];
  else if (method === 'DELETE') actions = ['delete'];
  else if (read) actions = ['pull'];
  else actions = ['pull', 'push'];
  return { kind: 'repository', name, actions };
}

export function resourceOf(target: Target): Resource {
  if (target.kind === 'hosted') return { names: [target.name], hosted: true, private: false };
  const canonical = `${target.routed.upstream.name}/${target.routed.repo}`;
  return { names: target.name === canonical ? [canonical] : [target.name, canonical], hosted: false, private: target.routed.upstream.private };
}

/** Whether a Bearer token's access claim covers the action on the name the client used. */
export function accessCovers(access: readonly Access[] | undefined, name: string, action: AuthAction): boolean {
  if (access === undefined) return true; // not a Bearer token: the principal's rights decide alone
  return access.some((a) => a.name === name && a.actions.includes(action));
}

/** The challenge a 401 carries: where to get a token, for which service and scope. */
export function challenge(realm: string, service: string, scope: { name: string; actions: readonly AuthAction[] } | undefined, error?: string): string {
  const parts = [`realm="${realm}"`, `service="${service}"`];
  if (scope) parts.push(`scope="repository:${scope.name}:${scope.actions.join(',')}"`);
  if (error) parts.push(`error="${error}"`);
  return `Bearer ${parts.join(',')}`;
}
