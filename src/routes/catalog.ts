// GET /v2/_catalog[?n=&last=]: every repository this registry answers from its own store: hosted
// repositories, pushed overrides and cached repositories (those with at least one cached tag), named as
// a client pulls them (default upstream: plain; others: with the upstream's name as path prefix), sorted,
// paged by n and last with a Link to the next page. Upstream repositories nobody pulled through the
// mirror are not listed, as the mirror does not know them; nor are repositories pulled only by digest,
// which have no cached tag. With Redis unreachable, the cached ones are left out rather than failing.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import { parseOverrideKey } from '../store/hosted-index.ts';
import type { RegistryDeps } from './deps.ts';

export function catalogRoutes(deps: RegistryDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/_catalog', async (c) => {
    c.set('route', 'catalog');
    const n = c.req.query('n');
    if (n !== undefined && !/^\d{1,6}$/.test(n)) throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { status: 400 });
    const last = c.req.query('last');
    const table = deps.resolver.table;
    const clientName = (upstream: string, repo: string) => (table.byName(upstream)?.isDefault ? repo : `${upstream}/${repo}`);
    const [cached, hosted] = await Promise.all([deps.mirror.meta.listRepos().catch(() => []), deps.hosted.index.listRepos()]);
    const names = new Set(cached.map(({ upstream, repo }) => clientName(upstream, repo)));
    for (const key of hosted) {
      const override = parseOverrideKey(key);
      names.add(override ? clientName(override.upstream, override.repo) : key);
    }
    const authorize = c.get('authorize');
    const visible = authorize ? [...names].filter((name) => mayPull(deps, authorize, name)) : [...names];
    const sorted = visible.sort();
    const after = last === undefined ? sorted : sorted.filter((name) => name > last);
    const page = n === undefined ? after : after.slice(0, Number(n));
    if (n !== undefined && after.length > page.length && page.length > 0) {
      c.header('Link', `</v2/_catalog?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`);
    }
    return c.json({ repositories: page });
  });
}

/** With client authentication on, _catalog lists only what the caller may pull. */
function mayPull(deps: RegistryDeps, authorize: NonNullable<AppEnv['Variables']['authorize']>, name: string): boolean {
  try {
    return authorize(deps.resolver.resolve({ name }), 'pull');
  } catch {
    return false;
  }
}
