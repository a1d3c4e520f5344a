// The referrers of a digest in a mirrored repository. Asked of the upstream's referrers API; where it has
// none (a 404: Docker Hub, registry 2.8) the "referrers tag schema" stands in: the tag `sha256-<hex>`,
// pulled like any tag, holds an index of the referrers (no such tag: none). The answer is reused for the
// upstream's tag TTL and served stale when the upstream is down or limiting, as tags are.
import { parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import { MANIFEST_TYPES, OCI_INDEX, isIndexType, parseAccept } from '../oci/media-types.ts';
import { ofArtifactType, referrersIndex, referrersOf, referrersTag, type ReferrerDescriptor } from '../oci/referrers.ts';
import type { ReferrersAnswer } from '../namespaces/source.ts';
import { drain } from '../upstream/body.ts';
import type { Routed } from '../upstream/route.ts';
import type { ProxyDeps } from './deps.ts';
import { canServeStale, pullManifest, readLimited, type ManifestPullDeps } from './pull-manifest.ts';
import { upstreamError } from './upstream-answer.ts';

/** What a referrers pull uses (the tag-schema fallback is a manifest pull). */
export type ReferrersPullDeps = ManifestPullDeps & Pick<ProxyDeps, 'referrerLists'>;

/** Pages of an upstream's answer followed (each bounded like a manifest); the rest is left out. */
const MAX_PAGES = 10;
const ANY_MANIFEST = parseAccept(MANIFEST_TYPES.join(', '));

interface Found {
  readonly descriptors: readonly ReferrerDescriptor[];
  readonly cache: 'hit' | 'miss' | 'stale';
}

export async function pullReferrers(deps: ReferrersPullDeps, routed: Routed, subject: string, artifactType: string | undefined): Promise<ReferrersAnswer> {
  const { upstream } = routed;
  const key = `${upstream.name}|${routed.repo}|${subject}|${artifactType ?? ''}`;
  const cached = deps.referrerLists.get(key);
  const answer = (body: Uint8Array, cache: Found['cache']): ReferrersAnswer => {
    deps.metrics.cacheLookups.inc({ kind: 'referrers', result: cache });
    return { body, filtered: artifactType !== undefined, cache };
  };
  if (cached && (deps.now() - cached.fetchedAt < upstream.tagTtlMs || upstream.offline)) return answer(cached.body, 'hit');
  try {
    const found = await (deps.manifestFetches.run(`referrers|${key}`, () => fetchReferrers(deps, routed, subject, artifactType)).promise as Promise<Found>);
    const body = referrersIndex(ofArtifactType(found.descriptors, artifactType));
    // Offline answers come from the cache already; a stale one is asked for again next time.
    if (!upstream.offline && found.cache !== 'stale') deps.referrerLists.set(key, { body, fetchedAt: deps.now() });
    return answer(body, found.cache);
  } catch (err) {
    if (!canServeStale(err)) throw err;
    // Else what the tag schema gave before (kept in the tag cache, which outlives this process's memory).
    const kept = cached ? undefined : await fromTagSchema(deps, { ...routed, upstream: { ...upstream, offline: true } }, subject).catch(() => undefined);
    const body = cached?.body ?? (kept ? referrersIndex(ofArtifactType(kept.descriptors, artifactType)) : undefined);
    if (!body) throw err;
    deps.logger.warn({ upstream: upstream.name, repo: routed.repo, subject, err }, 'upstream unavailable; serving cached referrers past their TTL');
    return answer(body, 'stale');
  }
}

async function fetchReferrers(deps: ReferrersPullDeps, routed: Routed, subject: string, artifactType: string | undefined): Promise<Found> {
  const listed = routed.upstream.offline ? undefined : await fromApi(deps, routed, subject, artifactType);
  if (listed) return { descriptors: listed, cache: 'miss' };
  return (await fromTagSchema(deps, routed, subject)) ?? { descriptors: [], cache: 'miss' };
}

/** The upstream's referrers API, all pages; undefined when it has none (404). */
async function fromApi(deps: ReferrersPullDeps, routed: Routed, subject: string, artifactType: string | undefined): Promise<ReferrerDescriptor[] | undefined> {
  const name = routed.upstream.name;
  const client = deps.clientFor(name);
  const found: ReferrerDescriptor[] = [];
  let path: string | undefined = `/v2/${routed.repo}/referrers/${subject}${artifactType === undefined ? '' : `?${new URLSearchParams({ artifactType })}`}`;
  for (let page = 0; path && page < MAX_PAGES; page++) {
    const res = await client.request({ method: 'GET', path, repo: routed.repo, via: routed.via, headers: { accept: OCI_INDEX } });
    // distribution-spec: a registry without the referrers API answers 404; with it, 200 even for an unknown subject.
    if (res.status === 404 && page === 0) {
      drain(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await upstreamError(res, name, 'MANIFEST_UNKNOWN');
    const listed = referrersOf(await readLimited(res, name, deps.metrics));
    if (!listed) throw new OciError('UNAVAILABLE', `upstream ${name} sent a referrers list that is not an image index`, { status: 502 });
    const applied = String(res.headers['oci-filters-applied'] ?? '').split(',').map((f) => f.trim());
    found.push(...(applied.includes('artifactType') ? listed : ofArtifactType(listed, artifactType)));
    path = nextPage(res.headers.link);
  }
  return found;
}

/** The index under the subject's referrers tag, pulled (and cached) like any tag; undefined when there is no such tag. */
async function fromTagSchema(deps: ReferrersPullDeps, routed: Routed, subject: string): Promise<Found | undefined> {
  try {
    const tagged = await pullManifest(deps, routed, referrersTag(parseDigest(subject)), ANY_MANIFEST);
    return { descriptors: isIndexType(tagged.record.mediaType) ? (referrersOf(tagged.body) ?? []) : [], cache: tagged.cache };
  } catch (err) {
    if (err instanceof OciError && err.code === 'MANIFEST_UNKNOWN') return undefined;
    throw err;
  }
}

/** The path of a `Link: <...>; rel="next"` header, if it stays on the registry's /v2/ API. */
function nextPage(link: string | string[] | undefined): string | undefined {
  const target = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(link ?? ''))?.[1];
  if (!target) return undefined;
  const url = new URL(target, 'http://upstream.invalid');
  return url.pathname.startsWith('/v2/') ? `${url.pathname}${url.search}` : undefined;
}
