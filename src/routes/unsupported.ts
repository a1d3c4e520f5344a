// A pull-through mirror is read-only: pushes and deletes get the spec's UNSUPPORTED error.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';

export function unsupportedRoutes(): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .on(['POST', 'PUT', 'PATCH', 'DELETE'], '/v2/*', (c) => {
      c.set('route', 'unsupported');
      throw new OciError('UNSUPPORTED', 'this registry is a read-only pull-through mirror', { headers: { allow: 'GET, HEAD' } });
    })
    .get('/v2/:name{.+}/referrers/:digest', (c) => {
      // distribution-spec v1.1: a registry without the referrers API answers 404 so clients use the tag scheme.
      c.set('route', 'referrers');
      throw new OciError('UNSUPPORTED', 'the referrers API is not supported by this mirror', { status: 404 });
    });
}
