// GET /v2/<name>/tags/list[?n=&last=]: from whichever source answers the name.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import type { TagsQuery } from '../namespaces/source.ts';
import type { RegistryDeps } from './deps.ts';
import { sourceOf, targetOf } from './routing.ts';

export function tagRoutes(deps: RegistryDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/tags/list', async (c) => {
    c.set('route', 'tags');
    const target = targetOf(c, deps);
    const n = c.req.query('n');
    const last = c.req.query('last');
    if (n !== undefined && !/^\d{1,6}$/.test(n)) throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { status: 400 });
    const query: TagsQuery = { ...(n !== undefined ? { n: Number(n) } : {}), ...(last !== undefined ? { last } : {}) };
    const answer = await sourceOf(c, deps, target).tags(query);
    c.set('cache', answer.cache);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (answer.link) headers.link = answer.link;
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    return c.body(answer.body as Uint8Array<ArrayBuffer>, 200, headers);
  });
}
