// GET /v2/<name>/tags/list[?n=&last=]: passed through to the upstream and cached briefly; when the
// upstream is down, the last answer (or the tags this mirror has cached) is served instead.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { metadataFailed } from '../mirror/metadata-failed.ts';
import { upstreamError } from '../mirror/upstream-answer.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { routeRequest } from './routing.ts';

const MAX_TAGS_BODY = 16 * 1024 * 1024;

export function tagRoutes(deps: ProxyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/tags/list', async (c) => {
    c.set('route', 'tags');
    const routed = routeRequest(c, deps.table);
    const query = new URLSearchParams();
    const n = c.req.query('n');
    const last = c.req.query('last');
    if (n !== undefined) {
      if (!/^\d{1,6}$/.test(n)) throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { status: 400 });
      query.set('n', n);
    }
    if (last !== undefined) query.set('last', last);
    const key = `${routed.upstream.name}|${routed.repo}|${query}`;
    const cached = deps.tagLists.get(key);
    const send = (body: Uint8Array, link: string | undefined, cache: string) => {
      c.set('cache', cache);
      deps.metrics.cacheLookups.inc({ kind: 'tags_list', result: cache });
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (link) headers.link = rewriteLink(link, routed.repo, c.req.param('name'), c.req.query('ns'));
      if (c.req.method === 'HEAD') return c.body(null, 200, headers);
      return c.body(body as Uint8Array<ArrayBuffer>, 200, headers);
    };
    if (cached && (deps.now() - cached.fetchedAt < deps.config.tagsListTtlMs || routed.upstream.offline)) return send(cached.body, cached.link, 'hit');
    try {
      if (routed.upstream.offline) throw new OciError('NAME_UNKNOWN', 'repository is not cached and the mirror is offline');
      const res = await deps.clientFor(routed.upstream.name).request({ method: 'GET', path: `/v2/${routed.repo}/tags/list${query.size ? `?${query}` : ''}`, repo: routed.repo, via: routed.via });
      if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'NAME_UNKNOWN');
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of res.body) {
        total += (chunk as Buffer).byteLength;
        if (total > MAX_TAGS_BODY) throw new OciError('UNAVAILABLE', 'upstream tag list is too large', { status: 502 });
        chunks.push(chunk as Buffer);
      }
      const body = Buffer.concat(chunks);
      const link = typeof res.headers.link === 'string' ? res.headers.link : undefined;
      deps.tagLists.set(key, { body, ...(link ? { link } : {}), fetchedAt: deps.now() });
      return send(body, link, 'miss');
    } catch (err) {
      const unreachable = err instanceof UpstreamUnavailableError || (err instanceof OciError && ['UNAVAILABLE', 'TOOMANYREQUESTS'].includes(err.code));
      if (!unreachable && !routed.upstream.offline) throw err;
      if (cached) return send(cached.body, cached.link, 'stale');
      const tags = await deps.meta.listTags(routed.upstream.name, routed.repo).catch((e: unknown) => {
        metadataFailed(deps, e);
        return [] as string[];
      });
      if (tags.length === 0) throw err;
      return send(Buffer.from(JSON.stringify({ name: routed.repo, tags })), undefined, 'stale');
    }
  });
}

/** The upstream's next-page link names its own repository path; point it at the name the client used. */
export function rewriteLink(link: string, upstreamRepo: string, clientName: string, ns: string | undefined): string {
  return link.replace(/<([^>]*)>/, (_, target: string) => {
    const url = new URL(target, 'http://upstream.invalid');
    const path = url.pathname.replace(`/v2/${upstreamRepo}/`, `/v2/${clientName}/`);
    if (ns !== undefined) url.searchParams.set('ns', ns);
    return `<${path}${url.search}>`;
  });
}
