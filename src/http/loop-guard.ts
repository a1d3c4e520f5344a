// Refuses a request this mirror sent itself (see upstream/loop.ts): 508 Loop Detected (RFC 5842)
// with an OCI error body, instead of proxying it again.
import type { MiddlewareHandler } from 'hono';
import { carriesOwnVia } from '../upstream/loop.ts';
import type { AppEnv } from './env.ts';
import { OciError } from '../oci/errors.ts';

export function loopGuard(options: { instanceId: string }): MiddlewareHandler<AppEnv> {
  return async function loopGuard(c, next) {
    if (carriesOwnVia(c.req.header('via'), options.instanceId)) {
      c.set('route', 'loop');
      throw new OciError(
        'UNAVAILABLE',
        'request loop: this request came from this mirror itself; an upstream URL, address or DNS entry on the mirror host points back at it',
        { status: 508 },
      );
    }
    await next();
  };
}
