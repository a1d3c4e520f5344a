// /v2/<name>/manifests/<tag|digest>: GET/HEAD from whichever source answers the name, PUT into a hosted
// repository (or an override), DELETE from one.
import { Hono } from 'hono';
import { deleteManifest, manifestUnknown } from '../hosted/delete.ts';
import { linkHeld } from '../hosted/link.ts';
import { putManifest } from '../hosted/put-manifest.ts';
import type { AppEnv } from '../http/env.ts';
import { readSmallBody } from '../http/request-body.ts';
import { OciError } from '../oci/errors.ts';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts';
import { parseAccept } from '../oci/media-types.ts';
import { isTag } from '../oci/reference.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { RegistryDeps } from './deps.ts';
import { nsQuery, sourceOf, targetOf, writableKey } from './routing.ts';

export function manifestRoutes(deps: RegistryDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get('/v2/:name{.+}/manifests/:reference', async (c) => {
      c.set('route', 'manifest');
      const target = targetOf(c, deps);
      const reference = c.req.param('reference');
      const accept = parseAccept(c.req.header('accept'));
      const answer = await sourceOf(c, deps, target).manifest(reference, accept);
      c.set('cache', answer.cache);
      const headers: Record<string, string> = {
        'content-type': answer.mediaType,
        'content-length': String(answer.body.byteLength),
        'docker-content-digest': answer.digest,
        etag: `"${answer.digest}"`,
        'x-ocimirror-cache': answer.cache,
      };
      if (answer.cache === 'stale') headers.warning = '110 ocimirror "Response is Stale"';
      // A cached manifest of a plain mirrored name: the same request is answered in front of hono for a while.
      const incoming = c.env?.incoming;
      if (deps.hot && incoming && target.kind === 'mirrored' && !target.override && (answer.cache === 'hit' || answer.cache === 'miss')) {
        const manifest = deps.mirror.manifests.peek(answer.digest);
        const { upstream, repo } = target.routed;
        if (manifest && manifest.body === answer.body) {
          deps.hot.remember(incoming, {
            reference: isTag(reference) ? { kind: 'tag', tag: { upstream: upstream.name, repo, tag: reference, accept: accept.key }, ttlMs: upstream.tagTtlMs } : { kind: 'digest' },
            manifest,
            headers: { ...headers, 'x-ocimirror-cache': 'hit', 'docker-distribution-api-version': 'registry/2.0', 'oci-namespace': upstream.name },
            upstream: upstream.name,
            repo,
            target,
          });
        }
      }
      if (c.req.method === 'HEAD') return c.body(null, 200, headers);
      c.set('bytes', answer.body.byteLength);
      const source = answer.cache === 'miss' ? 'upstream' : answer.cache === 'hosted' ? 'hosted' : 'cache';
      deps.mirror.metrics.servedBytes.inc({ source }, answer.body.byteLength);
      return c.body(answer.body as Uint8Array<ArrayBuffer>, 200, headers);
    })
    .put('/v2/:name{.+}/manifests/:reference', async (c) => {
      c.set('route', 'manifest_put');
      const target = targetOf(c, deps);
      const key = writableKey(deps, target);
      const body = await readSmallBody(c, MAX_MANIFEST_BYTES, 'the manifest');
      const pushed = await putManifest(deps.hosted, {
        key,
        reference: c.req.param('reference'),
        tags: c.req.queries('tag') ?? [],
        contentType: c.req.header('content-type'),
        body,
        ...(target.kind === 'mirrored' ? { ensureBlob: (digest: string) => fetchForOverride(c, deps, target, key, digest) } : {}),
        ...(c.get('user') ? { actor: c.get('user') } : {}),
      });
      const headers: Record<string, string> = {
        location: `/v2/${target.name}/manifests/${pushed.digest}${nsQuery(c)}`,
        'docker-content-digest': pushed.digest,
        'content-length': '0',
      };
      if (pushed.subject) headers['oci-subject'] = pushed.subject;
      return c.body(null, 201, headers);
    })
    .delete('/v2/:name{.+}/manifests/:reference', async (c) => {
      c.set('route', 'manifest_delete');
      const target = targetOf(c, deps);
      const key = writableKey(deps, target);
      const reference = c.req.param('reference');
      if (await deleteManifest(deps.hosted, key, reference, c.get('user'))) return c.body(null, 202, { 'content-length': '0' });
      if (target.kind === 'mirrored') {
        throw new OciError('UNSUPPORTED', `no pushed override of "${target.name}" has this reference; what is cached from ${target.routed.upstream.name} is dropped with \`ocimirror rm\``, {
          detail: { name: target.name, reference: reference.slice(0, 200) },
        });
      }
      throw manifestUnknown(target.name, reference);
    });
}

/**
 * A blob an override's manifest names but the push did not upload (the client saw it through the mirror,
 * e.g. an upstream base layer): fetched through the mirror, then linked, so the override pulls offline.
 */
async function fetchForOverride(c: Parameters<typeof sourceOf>[0], deps: RegistryDeps, target: Target, key: string, digest: string): Promise<boolean> {
  const answer = await sourceOf(c, deps, target)
    .blob(digest)
    .catch(() => undefined);
  if (!answer) return false;
  if (answer.source === 'upstream') {
    // Reading it to the end completes (and verifies) the download into the store.
    for await (const _ of await answer.open()) void _;
  }
  return linkHeld(deps.hosted, key, digest);
}
