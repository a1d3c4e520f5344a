// Endpoints this registry does not offer (yet): the spec's answers for them.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';

export function unsupportedRoutes(): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/referrers/:digest', (c) => {
    // distribution-spec v1.1: a registry without the referrers API answers 404 so clients use the tag scheme.
    c.set('route', 'referrers');
    throw new OciError('UNSUPPORTED', 'the referrers API is not supported by this registry yet', { status: 404 });
  });
}
