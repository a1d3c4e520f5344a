// GET/HEAD of a manifest. By digest: immutable, cached forever once verified. By tag: served from the
// cache within the upstream's tag TTL; after it, revalidated with a HEAD (free against Docker Hub's pull
// limit) and refetched only when the digest moved; served stale when the upstream is down or limiting.
// Tag answers are cached per Accept class, so a client that accepts no index never gets a cached one.
import { OciError } from '../oci/errors.ts';
import { digestOf, looksLikeDigest, parseDigest } from '../oci/digest.ts';
import { MAX_MANIFEST_BYTES, resolveManifestMediaType, summarizeManifest } from '../oci/manifest.ts';
import { MANIFEST_TYPES, bareMediaType, isIndexType, isSchema1, type AcceptSet } from '../oci/media-types.ts';
import { isTag } from '../oci/reference.ts';
import type { ManifestRecord, TagKey, TagRecord } from '../store/metadata-store.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { drain } from '../upstream/body.ts';
import type { UpstreamResponse } from '../upstream/registry-client.ts';
import type { Routed } from '../upstream/route.ts';
import type { CachedManifest, ProxyDeps } from './deps.ts';
import { servableManifest } from './hosted-guard.ts';
import { metadataFailed } from './metadata-failed.ts';
import { upstreamError } from './upstream-answer.ts';

/** What a manifest pull uses. */
export type ManifestPullDeps = Pick<ProxyDeps, 'clientFor' | 'blobs' | 'meta' | 'pins' | 'manifests' | 'budget' | 'negative' | 'manifestFetches' | 'metrics' | 'logger' | 'now'>;

const ALL_MANIFEST_TYPES = MANIFEST_TYPES.join(', ');

export type ManifestCacheResult = 'hit' | 'miss' | 'stale';

export interface ManifestAnswer extends CachedManifest {
  readonly cache: ManifestCacheResult;
}

export async function pullManifest(deps: ManifestPullDeps, routed: Routed, reference: string, accept: AcceptSet): Promise<ManifestAnswer> {
  if (looksLikeDigest(reference)) return byDigest(deps, routed, parseDigest(reference).value);
  // A tag that cannot exist is unknown, as the distribution-spec conformance suite expects (404, not 400).
  if (!isTag(reference)) throw new OciError('MANIFEST_UNKNOWN', 'manifest unknown: not a valid tag', { detail: { tag: reference.slice(0, 200) } });
  return byTag(deps, routed, reference, accept);
}

async function byDigest(deps: ManifestPullDeps, routed: Routed, digest: string): Promise<ManifestAnswer> {
  const guard = await servableManifest(deps, digest);
  const local = guard.servable ? await loadLocal(deps, digest, guard) : undefined;
  if (local) {
    deps.metrics.cacheLookups.inc({ kind: 'manifest', result: 'hit' });
    return { ...local, cache: 'hit' };
  }
  deps.metrics.cacheLookups.inc({ kind: 'manifest', result: 'miss' });
  if (routed.upstream.offline) throw new OciError('MANIFEST_UNKNOWN', 'manifest is not cached and the mirror is offline', { detail: { digest } });
  const negativeKey = `manifest|${routed.upstream.name}|${routed.repo}|${digest}`;
  rejectKnown404(deps, negativeKey, 'manifest');
  const fetched = await once(deps, `digest|${routed.upstream.name}|${digest}`, async () => {
    const res = await deps.clientFor(routed.upstream.name).request({
      method: 'GET',
      path: `/v2/${routed.repo}/manifests/${digest}`,
      repo: routed.repo,
      via: routed.via,
      headers: { accept: ALL_MANIFEST_TYPES },
    });
    return receive(deps, routed, res, digest);
  }).catch((err: unknown) => {
    deps.negative.remember(negativeKey, err);
    throw err;
  });
  return { ...fetched, cache: 'miss' };
}

async function byTag(deps: ManifestPullDeps, routed: Routed, tag: string, accept: AcceptSet): Promise<ManifestAnswer> {
  const key: TagKey = { upstream: routed.upstream.name, repo: routed.repo, tag, accept: accept.key };
  const record = await deps.meta.getTag(key).catch((err: unknown) => void metadataFailed(deps, err));
  const local = record && acceptable(record, accept) ? await loadLocal(deps, record.digest) : undefined;
  const fresh = record && deps.now() - record.fetchedAt < routed.upstream.tagTtlMs;
  if (local && (fresh || routed.upstream.offline)) {
    deps.metrics.cacheLookups.inc({ kind: 'tag', result: 'hit' });
    return { ...local, cache: 'hit' };
  }
  if (routed.upstream.offline) {
    deps.metrics.cacheLookups.inc({ kind: 'tag', result: 'miss' });
    throw new OciError('MANIFEST_UNKNOWN', 'tag is not cached and the mirror is offline', { detail: { tag } });
  }
  const negativeKey = `tag|${routed.upstream.name}|${routed.repo}|${tag}|${accept.key}`;
  if (!local) rejectKnown404(deps, negativeKey, 'tag');
  try {
    const answer = await once(deps, `tag|${routed.upstream.name}|${routed.repo}|${tag}|${accept.key}`, () =>
      refreshTag(deps, routed, key, accept, local),
    );
    deps.metrics.cacheLookups.inc({ kind: 'tag', result: answer.cache });
    return answer;
  } catch (err) {
    if (local && canServeStale(err)) {
      deps.metrics.cacheLookups.inc({ kind: 'tag', result: 'stale' });
      deps.logger.warn({ upstream: routed.upstream.name, repo: routed.repo, tag, err }, 'upstream unavailable; serving cached tag past its TTL');
      return { ...local, cache: 'stale' };
    }
    if (err instanceof OciError && err.code === 'MANIFEST_UNKNOWN') await deps.meta.deleteTag(routed.upstream.name, routed.repo, tag).catch(() => {});
    deps.negative.remember(negativeKey, err);
    throw err;
  }
}

/** Revalidates a cached tag with HEAD when we hold its manifest, else GETs it. */
async function refreshTag(deps: ManifestPullDeps, routed: Routed, key: TagKey, accept: AcceptSet, local: CachedManifest | undefined): Promise<ManifestAnswer> {
  const client = deps.clientFor(routed.upstream.name);
  const path = `/v2/${routed.repo}/manifests/${key.tag}`;
  if (local) {
    const head = await client.request({ method: 'HEAD', path, repo: routed.repo, via: routed.via, headers: { accept: accept.header } });
    drain(head.body);
    if (head.status !== 200) throw await upstreamError(head, routed.upstream.name, 'MANIFEST_UNKNOWN');
    if (head.headers['docker-content-digest'] === local.digest) {
      await setTag(deps, key, local, 'revalidated');
      return { ...local, cache: 'hit' };
    }
  }
  const res = await client.request({ method: 'GET', path, repo: routed.repo, via: routed.via, headers: { accept: accept.header } });
  const fetched = await receive(deps, routed, res, undefined);
  await setTag(deps, key, fetched, 'fetched');
  return { ...fetched, cache: 'miss' };
}

/** Reads, verifies and stores a manifest answer; `expected` is the digest asked for, if any. */
async function receive(deps: ManifestPullDeps, routed: Routed, res: UpstreamResponse, expected: string | undefined): Promise<CachedManifest> {
  if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'MANIFEST_UNKNOWN');
  const body = await readLimited(res, routed.upstream.name, deps.metrics);
  const claimed = res.headers['docker-content-digest'];
  const digest = expected ?? (typeof claimed === 'string' && looksLikeDigest(claimed) ? claimed : digestOf(body));
  const { algorithm } = parseDigest(digest);
  if (digestOf(body, algorithm) !== digest) {
    deps.metrics.upstreamErrors.inc({ upstream: routed.upstream.name, reason: 'digest' });
    throw new OciError('UNAVAILABLE', `upstream ${routed.upstream.name} sent a manifest that does not match its digest`, { status: 502, detail: { digest } });
  }
  const contentType = bareMediaType(res.headers['content-type']);
  if (isSchema1(contentType)) throw new OciError('MANIFEST_INVALID', 'Docker schema1 manifests are not supported', { status: 502 });
  const summary = summarizeManifest(body);
  const mediaType = resolveManifestMediaType(contentType, summary);
  if (!mediaType) throw new OciError('MANIFEST_INVALID', `upstream ${routed.upstream.name} sent an unknown manifest type "${contentType}"`, { status: 502 });
  const references = [summary.config, ...summary.layers, ...summary.manifests].flatMap((d) => (d ? [d.digest] : []));
  const record = { mediaType, size: body.byteLength, references };
  if (!(await deps.blobs.stat(digest))) deps.budget.added((await deps.blobs.put(digest, body)).size);
  await deps.meta.setManifest(digest, record).catch((err: unknown) => metadataFailed(deps, err));
  const cached = { digest, record, body };
  deps.manifests.set(digest, cached);
  return cached;
}

/** Reads a manifest-sized upstream body (at most MAX_MANIFEST_BYTES). */
export async function readLimited(res: UpstreamResponse, upstream: string, metrics: ProxyDeps['metrics']): Promise<Uint8Array> {
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > MAX_MANIFEST_BYTES) {
    res.body.destroy();
    throw new OciError('MANIFEST_INVALID', `upstream ${upstream} sent a manifest over ${MAX_MANIFEST_BYTES} bytes`, { status: 502 });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).byteLength;
      if (total > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new OciError('MANIFEST_INVALID', `upstream ${upstream} sent a manifest over ${MAX_MANIFEST_BYTES} bytes`, { status: 502 });
      }
      chunks.push(chunk as Buffer);
    }
    metrics.upstreamBytes.inc({ upstream }, total);
  } catch (err) {
    if (err instanceof OciError) throw err;
    throw new UpstreamUnavailableError(upstream, 'reset', `upstream ${upstream} broke off a manifest: ${(err as Error).message}`, { cause: err });
  }
  return Buffer.concat(chunks);
}

/**
 * The manifest from the LRU, else from the stores (metadata rebuilt from the body if it was lost);
 * `known`: its metadata record, already read.
 */
async function loadLocal(deps: ManifestPullDeps, digest: string, known?: { readonly record: ManifestRecord | undefined }): Promise<CachedManifest | undefined> {
  const hot = deps.manifests.get(digest);
  if (hot) return hot;
  const [record, body] = await Promise.all([
    known ? known.record : deps.meta.getManifest(digest).catch((err: unknown) => void metadataFailed(deps, err)),
    deps.blobs.read(digest),
  ]);
  if (!body) return undefined;
  let cached: CachedManifest;
  if (record) {
    cached = { digest, record, body };
  } else {
    const summary = summarizeManifest(body);
    const mediaType = resolveManifestMediaType('', summary);
    if (!mediaType) return undefined;
    const references = [summary.config, ...summary.layers, ...summary.manifests].flatMap((d) => (d ? [d.digest] : []));
    cached = { digest, record: { mediaType, size: body.byteLength, references }, body };
  }
  deps.manifests.set(digest, cached);
  return cached;
}

async function setTag(deps: ManifestPullDeps, key: TagKey, manifest: CachedManifest, why: string): Promise<void> {
  const record: TagRecord = { digest: manifest.digest, mediaType: manifest.record.mediaType, size: manifest.record.size, fetchedAt: deps.now() };
  await deps.meta.setTag(key, record).catch((err: unknown) => metadataFailed(deps, err));
  deps.logger.debug({ upstream: key.upstream, repo: key.repo, tag: key.tag, digest: manifest.digest, why }, 'tag recorded');
}

/** Never hand a cached index to a client whose Accept lacks index types. */
function acceptable(record: TagRecord, accept: AcceptSet): boolean {
  return !isIndexType(record.mediaType) || accept.types.has(record.mediaType);
}

/** Whether the upstream failed in a way that lets a cached answer stand in (down, 5xx, limiting). */
export function canServeStale(err: unknown): boolean {
  return err instanceof UpstreamUnavailableError || (err instanceof OciError && (err.code === 'TOOMANYREQUESTS' || err.code === 'UNAVAILABLE'));
}

function rejectKnown404(deps: ManifestPullDeps, key: string, kind: 'tag' | 'manifest'): void {
  const known = deps.negative.get(key);
  if (!known) return;
  deps.metrics.cacheLookups.inc({ kind, result: 'negative' });
  throw known;
}

function once<T>(deps: ManifestPullDeps, key: string, work: () => Promise<T>): Promise<T> {
  return deps.manifestFetches.run(key, work).promise as Promise<T>;
}
