// GET/HEAD /v2/<name>/manifests/<tag|digest>
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { parseAccept } from '../oci/media-types.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { pullManifest } from '../mirror/pull-manifest.ts';
import { routeRequest } from './routing.ts';

export function manifestRoutes(deps: ProxyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/manifests/:reference', async (c) => {
    c.set('route', 'manifest');
    const routed = routeRequest(c, deps.table);
    const answer = await pullManifest(deps, routed, c.req.param('reference'), parseAccept(c.req.header('accept')));
    c.set('cache', answer.cache);
    const headers: Record<string, string> = {
      'content-type': answer.record.mediaType,
      'content-length': String(answer.body.byteLength),
      'docker-content-digest': answer.digest,
      etag: `"${answer.digest}"`,
      'x-ocimirror-cache': answer.cache,
    };
    if (answer.cache === 'stale') headers.warning = '110 ocimirror "Response is Stale"';
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    c.set('bytes', answer.body.byteLength);
    deps.metrics.servedBytes.inc({ source: answer.cache === 'miss' ? 'upstream' : 'cache' }, answer.body.byteLength);
    return c.body(answer.body as Uint8Array<ArrayBuffer>, 200, headers);
  });
}
