// GET /v2/<name>/referrers/<digest>[?artifactType=] (distribution-spec v1.1 "Listing Referrers"): the
// manifests whose subject is <digest>, as an OCI image index, from whichever source answers the name.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { parseDigest } from '../oci/digest.ts';
import { OCI_INDEX } from '../oci/media-types.ts';
import type { RegistryDeps } from './deps.ts';
import { sourceOf, targetOf } from './routing.ts';

export function referrerRoutes(deps: RegistryDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/referrers/:digest', async (c) => {
    c.set('route', 'referrers');
    const target = targetOf(c, deps);
    const digest = parseDigest(c.req.param('digest')).value;
    const answer = await sourceOf(c, deps, target).referrers(digest, c.req.query('artifactType'));
    c.set('cache', answer.cache);
    const headers: Record<string, string> = { 'content-type': OCI_INDEX, 'content-length': String(answer.body.byteLength), 'x-ocimirror-cache': answer.cache };
    if (answer.filtered) headers['oci-filters-applied'] = 'artifactType';
    if (answer.cache === 'stale') headers.warning = '110 ocimirror "Response is Stale"';
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    c.set('bytes', answer.body.byteLength);
    return c.body(answer.body as Uint8Array<ArrayBuffer>, 200, headers);
  });
}
