// tags/list of a mirrored repository: passed through from the upstream and cached briefly; when the
// upstream is down, the last answer (or the tags this mirror has cached) is served instead.
import { OciError } from '../oci/errors.ts';
import type { TagsAnswer, TagsQuery } from '../namespaces/source.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { readLimited } from '../upstream/body.ts';
import type { Routed } from '../upstream/route.ts';
import type { ProxyDeps } from './deps.ts';
import { metadataFailed } from './metadata-failed.ts';
import { upstreamError } from './upstream-answer.ts';

/** What a tags/list pull uses. */
export type TagsPullDeps = Pick<ProxyDeps, 'config' | 'clientFor' | 'meta' | 'tagLists' | 'metrics' | 'logger' | 'now'>;

const MAX_TAGS_BODY = 16 * 1024 * 1024;

/** `clientName` and `ns`: how the client named the repository, for the next-page link. */
export async function pullTags(deps: TagsPullDeps, routed: Routed, query: TagsQuery, client: { name: string; ns: string | undefined }): Promise<TagsAnswer> {
  const params = new URLSearchParams();
  if (query.n !== undefined) params.set('n', String(query.n));
  if (query.last !== undefined) params.set('last', query.last);
  const key = `${routed.upstream.name}|${routed.repo}|${params}`;
  const cached = deps.tagLists.get(key);
  const answer = (body: Uint8Array, link: string | undefined, cache: string): TagsAnswer => {
    deps.metrics.cacheLookups.inc({ kind: 'tags_list', result: cache });
    return { body, ...(link ? { link: rewriteLink(link, routed.repo, client.name, client.ns) } : {}), cache };
  };
  if (cached && (deps.now() - cached.fetchedAt < deps.config.tagsListTtlMs || routed.upstream.offline)) return answer(cached.body, cached.link, 'hit');
  try {
    if (routed.upstream.offline) throw new OciError('NAME_UNKNOWN', 'repository is not cached and the mirror is offline');
    const res = await deps.clientFor(routed.upstream.name).request({ method: 'GET', path: `/v2/${routed.repo}/tags/list${params.size ? `?${params}` : ''}`, repo: routed.repo, via: routed.via });
    if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'NAME_UNKNOWN');
    const tooLarge = () => new OciError('UNAVAILABLE', 'upstream tag list is too large', { status: 502 });
    if (Number(res.headers['content-length']) > MAX_TAGS_BODY) {
      res.body.destroy();
      throw tooLarge();
    }
    const body = await readLimited(res.body, MAX_TAGS_BODY, tooLarge);
    const link = typeof res.headers.link === 'string' ? res.headers.link : undefined;
    deps.tagLists.set(key, { body, ...(link ? { link } : {}), fetchedAt: deps.now() });
    return answer(body, link, 'miss');
  } catch (err) {
    const unreachable = err instanceof UpstreamUnavailableError || (err instanceof OciError && ['UNAVAILABLE', 'TOOMANYREQUESTS'].includes(err.code));
    if (!unreachable && !routed.upstream.offline) throw err;
    if (cached) return answer(cached.body, cached.link, 'stale');
    const tags = await deps.meta.listTags(routed.upstream.name, routed.repo).catch((e: unknown) => {
      metadataFailed(deps, e);
      return [] as string[];
    });
    if (tags.length === 0) throw err;
    return answer(Buffer.from(JSON.stringify({ name: routed.repo, tags })), undefined, 'stale');
  }
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
