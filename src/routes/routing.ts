// Resolves the /v2/<name>/... request's target (hosted repository or upstream), records it on the
// response and in the log, and gives the read source that answers it.
import type { Context } from 'hono';
import { findBlob, findManifest, hostedSource } from '../hosted/read.ts';
import { hostedReferrers } from '../hosted/referrers.ts';
import type { AppEnv } from '../http/env.ts';
import { mirrorSource } from '../mirror/mirror-source.ts';
import { overrideSource } from '../namespaces/override-source.ts';
import { overridesOff, type Target } from '../namespaces/resolve.ts';
import type { ReadSource } from '../namespaces/source.ts';
import type { RegistryDeps } from './deps.ts';

export function targetOf(c: Context<AppEnv>, deps: RegistryDeps, name = c.req.param('name') ?? ''): Target {
  const target = deps.resolver.resolve({ ns: c.req.query('ns'), host: c.req.header('host'), name, via: c.req.header('via') });
  if (target.kind === 'hosted') {
    c.set('upstream', 'hosted');
    c.set('repo', target.name);
  } else {
    c.set('upstream', target.routed.upstream.name);
    c.set('repo', target.routed.repo);
    // distribution-spec "Registry Proxying": echo the namespace that served the request.
    c.header('OCI-Namespace', target.routed.upstream.name);
  }
  return target;
}

export function sourceOf(c: Context<AppEnv>, deps: RegistryDeps, target: Target): ReadSource {
  const ns = c.req.query('ns');
  if (target.kind === 'hosted') return hostedSource(deps.hosted, target.key, target.name, ns);
  const mirror = mirrorSource(deps.mirror, target.routed, { name: target.name, ns, head: c.req.method === 'HEAD' });
  if (!target.override) return mirror;
  const key = target.override;
  return overrideSource({
    mirror,
    manifest: (reference) => findManifest(deps.hosted, key, reference),
    blob: (digest) => findBlob(deps.hosted, key, digest),
    tags: () => deps.hosted.index.listTags(key),
    referrers: (digest) => hostedReferrers(deps.hosted, key, digest),
    clientName: target.name,
    ns,
  });
}

/** The hosted index key that a push or delete of `target` writes to; refused for a plain mirrored name. */
export function writableKey(deps: RegistryDeps, target: Target): string {
  if (target.kind === 'hosted') return target.key;
  if (target.override) return target.override;
  throw overridesOff(target, deps.resolver.namespaces);
}

/** `?ns=` as the client sent it, for Location headers that must route the same way. */
export function nsQuery(c: Context<AppEnv>): string {
  const ns = c.req.query('ns');
  return ns === undefined ? '' : `?ns=${encodeURIComponent(ns)}`;
}
