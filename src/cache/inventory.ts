// `ocimirror ls`: the cached and hosted repositories, and per cached repository its tags with digests,
// sizes and times.
import type { HostedDeps } from '../hosted/deps.ts';
import { OciError } from '../oci/errors.ts';
import { parseOverrideKey } from '../store/hosted-index.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { UpstreamTable } from '../upstream/route.ts';
import { walkManifests } from './manifest-tree.ts';

/** What listing the cache reads. */
export type InventoryDeps = Pick<ProxyDeps, 'blobs' | 'meta' | 'manifests' | 'table'>;

export interface RepositorySummary {
  /** cached: fetched from `upstream`; hosted: pushed to a hosted namespace; override: pushed to stand in for `upstream`'s. */
  readonly kind: 'cached' | 'hosted' | 'override';
  /** The upstream, or "hosted". */
  readonly upstream: string;
  readonly repo: string;
  /** The name a client pulls it by through the mirror (as /v2/_catalog lists it). */
  readonly name: string;
  readonly tags: number;
}

export interface TagManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** When the upstream last confirmed the tag pointed here (ms since epoch). */
  readonly fetchedAt: number;
}

export interface TagSummary {
  readonly tag: string;
  /** One entry per distinct manifest among the tag's Accept-class answers (usually one). */
  readonly manifests: readonly TagManifest[];
  /** Bytes this replica holds for the tag: manifests, configs and layers, each counted once. */
  readonly sizeBytes: number;
  /** Manifests and blobs held on disk. */
  readonly heldBlobs: number;
  /** Referenced but not held: platforms or layers no client pulled yet, or evicted. */
  readonly missingBlobs: number;
  /** Last time a client was served one of the tag's blobs (ms since epoch), if ever. */
  readonly lastAccess: number | undefined;
}

export interface RepositoryDetail {
  readonly upstream: string;
  readonly repo: string;
  readonly name: string;
  readonly tags: readonly TagSummary[];
}

/** A repository's name as clients pull it through the mirror: plain on the default upstream, else prefixed. */
export function mirrorName(table: UpstreamTable, upstream: string, repo: string): string {
  return table.byName(upstream)?.isDefault ? repo : `${upstream}/${repo}`;
}

export async function listRepositories(deps: InventoryDeps): Promise<RepositorySummary[]> {
  const repos = await deps.meta.listRepos();
  return Promise.all(
    repos.map(async ({ upstream, repo }) => ({
      kind: 'cached' as const,
      upstream,
      repo,
      name: mirrorName(deps.table, upstream, repo),
      tags: (await deps.meta.listTags(upstream, repo)).length,
    })),
  );
}

/** Hosted repositories and overrides, named as clients pull them. */
export async function listHostedRepositories(hosted: HostedDeps, table: UpstreamTable): Promise<RepositorySummary[]> {
  return Promise.all(
    (await hosted.index.listRepos()).map(async (key) => {
      const tags = (await hosted.index.listTags(key)).length;
      const override = parseOverrideKey(key);
      if (!override) return { kind: 'hosted' as const, upstream: 'hosted', repo: key, name: key, tags };
      return { kind: 'override' as const, upstream: override.upstream, repo: override.repo, name: mirrorName(table, override.upstream, override.repo), tags };
    }),
  );
}

export async function describeRepository(deps: InventoryDeps, upstream: string, repo: string): Promise<RepositoryDetail> {
  const records = await deps.meta.tagRecords(upstream, repo);
  if (records.length === 0) throw new OciError('NAME_UNKNOWN', 'repository is not cached', { detail: { upstream, repo } });
  const byTag = new Map<string, Map<string, TagManifest>>();
  for (const r of records) {
    const manifests = byTag.get(r.tag) ?? new Map<string, TagManifest>();
    const seen = manifests.get(r.digest);
    if (!seen || seen.fetchedAt < r.fetchedAt) manifests.set(r.digest, { digest: r.digest, mediaType: r.mediaType, size: r.size, fetchedAt: r.fetchedAt });
    byTag.set(r.tag, manifests);
  }
  const tags: TagSummary[] = [];
  for (const [tag, manifests] of byTag) {
    const tree = await walkManifests(deps, manifests.keys());
    let sizeBytes = 0;
    let heldBlobs = 0;
    let missingBlobs = 0;
    let lastAccess: number | undefined;
    for (const digest of new Set([...tree.manifests.keys(), ...tree.blobs])) {
      const held = await deps.blobs.stat(digest);
      if (!held) {
        missingBlobs++;
        continue;
      }
      heldBlobs++;
      sizeBytes += held.size;
      const access = (await deps.meta.getBlob(digest).catch(() => undefined))?.lastAccess;
      if (access && (lastAccess === undefined || access > lastAccess)) lastAccess = access;
    }
    tags.push({ tag, manifests: [...manifests.values()], sizeBytes, heldBlobs, missingBlobs, lastAccess });
  }
  return { upstream, repo, name: mirrorName(deps.table, upstream, repo), tags };
}

export interface RepositoryUsage {
  readonly tags: number;
  /** Bytes this replica holds for the repository's tags, each digest counted once. */
  readonly sizeBytes: number;
  /** When a client was last served one of its blobs (ms since epoch), if ever. */
  readonly lastAccess: number | undefined;
}

/**
 * Tag count, size and last pull of a repository, cached or hosted, from what its tags point at
 * (cachedTagRoots, hostedTagRoots): for a page of a listing, so that only the repositories shown are sized.
 */
export async function repositoryUsage(deps: InventoryDeps, roots: { readonly tags: number; readonly digests: readonly string[] }): Promise<RepositoryUsage> {
  const tree = await walkManifests(deps, roots.digests);
  let sizeBytes = 0;
  let lastAccess: number | undefined;
  for (const digest of new Set([...tree.manifests.keys(), ...tree.blobs])) {
    const held = await deps.blobs.stat(digest);
    if (!held) continue;
    sizeBytes += held.size;
    const access = (await deps.meta.getBlob(digest).catch(() => undefined))?.lastAccess;
    if (access && (lastAccess === undefined || access > lastAccess)) lastAccess = access;
  }
  return { tags: roots.tags, sizeBytes, lastAccess };
}

/** What a cached repository's tags point at. */
export async function cachedTagRoots(deps: InventoryDeps, upstream: string, repo: string): Promise<{ tags: number; digests: string[] }> {
  const records = await deps.meta.tagRecords(upstream, repo);
  return { tags: new Set(records.map((r) => r.tag)).size, digests: [...new Set(records.map((r) => r.digest))] };
}

/** What a hosted repository's (or override's) tags point at. */
export async function hostedTagRoots(hosted: HostedDeps, key: string): Promise<{ tags: number; digests: string[] }> {
  const tags = await hosted.index.listTags(key);
  const digests = await Promise.all(tags.map((tag) => hosted.index.getTag(key, tag)));
  return { tags: tags.length, digests: [...new Set(digests.filter((d) => d !== undefined))] };
}
