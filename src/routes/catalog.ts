// GET /v2/_catalog[?n=&last=]: the repositories this mirror holds, named as a client pulls them
// through it (default upstream: plain; others: with the upstream's name as path prefix).
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import type { ProxyDeps } from '../mirror/deps.ts';

export function catalogRoutes(deps: ProxyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/_catalog', async (c) => {
    c.set('route', 'catalog');
    const n = c.req.query('n');
    if (n !== undefined && !/^\d{1,6}$/.test(n)) throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { status: 400 });
    const last = c.req.query('last');
    const names = (await deps.meta.listRepos())
      .map(({ upstream, repo }) => (deps.table.byName(upstream)?.isDefault ? repo : `${upstream}/${repo}`))
      .sort();
    const after = last === undefined ? names : names.filter((name) => name > last);
    const page = n === undefined ? after : after.slice(0, Number(n));
    if (n !== undefined && after.length > page.length && page.length > 0) {
      c.header('Link', `</v2/_catalog?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`);
    }
    return c.json({ repositories: page });
  });
}
