// Whether the hot path (routes/hot-manifests.ts) may answer a pull itself with client authentication on:
// the same identity and rule checks the registry's gate (middleware.ts) makes for a pull, for the callers
// whose check has no side effects: no credentials (anonymous) or a Bearer token. Anything else, and every
// refusal, goes to the full path, which answers it (401, 403, 429) and counts failed logins once.
import type { Target } from '../namespaces/resolve.ts';
import { accessCovers, identify, resourceOf, type AuthDeps } from './gate.ts';

/** The caller's name (undefined: anonymous) when it may pull `target`; false: the full path decides. */
export type HotPullCheck = (authorization: string | undefined, target: Target) => Promise<{ user: string | undefined } | false>;

export function hotPullCheck(deps: AuthDeps): HotPullCheck {
  return async function hotPull(authorization, target) {
    if (authorization !== undefined && !/^\s*bearer\s/i.test(authorization)) return false;
    const identity = await identify(deps, authorization, 'unknown');
    if (!identity.ok) return false;
    const { principal } = identity;
    if (!deps.authorizer.allowed(principal, resourceOf(target), 'pull') || !accessCovers(identity.access, target.name, 'pull')) return false;
    return { user: principal.kind === 'anonymous' ? undefined : principal.name };
  };
}
