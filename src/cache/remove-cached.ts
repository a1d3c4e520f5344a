// `ocimirror rm` of a whole cached repository, or of a manifest pulled by digest: as for one tag
// (remove-tag.ts), the roots go, and what only they reach is freed; whatever any other cached tag or
// stored manifest reaches stays, and so does content a download or read is using or a hosted repository
// holds.
import { OciError } from '../oci/errors.ts';
import { cachedRoots } from './cached-roots.ts';
import { freeUnreached } from './free-unreached.ts';
import { manifestNode } from './manifest-tree.ts';
import type { FreedBlob, RemoveTagDeps, RemoveTagOptions } from './remove-tag.ts';

export interface RemovedCached {
  readonly upstream: string;
  readonly repo: string;
  /** The cached tags dropped: all of the repository's, or none for a digest. */
  readonly tags: readonly string[];
  /** The manifests removed as roots (what the tags pointed at, or the digest). */
  readonly digests: readonly string[];
  readonly freed: readonly FreedBlob[];
  readonly freedBytes: number;
  /** Digests reached from the roots that stay because something else uses them. */
  readonly shared: number;
  readonly dryRun: boolean;
}

/** Drops every cached tag of the repository and frees what only they reach. */
export async function removeRepository(deps: RemoveTagDeps, target: { upstream: string; repo: string }, options: RemoveTagOptions = {}): Promise<RemovedCached> {
  const { upstream, repo } = target;
  const records = await deps.meta.tagRecords(upstream, repo);
  if (records.length === 0) throw new OciError('NAME_UNKNOWN', 'repository is not cached', { detail: { upstream, repo } });
  const tags = [...new Set(records.map((r) => r.tag))];
  const roots = [...new Set(records.map((r) => r.digest))];
  const freed = await freeUnreached(deps, roots, (skip) => otherRoots(deps, { upstream, repo, roots }, skip), options, async () => {
    for (const tag of tags) await deps.meta.deleteTag(upstream, repo, tag);
  });
  deps.logger.info({ upstream, repo, tags, freed_blobs: freed.freed.length, freed_bytes: freed.freedBytes, shared_blobs: freed.shared, dryRun: !!options.dryRun }, 'cached repository removed');
  return { upstream, repo, tags, digests: roots, ...freed, dryRun: !!options.dryRun };
}

/**
 * Frees a manifest the mirror holds (typically pulled by digest, as Kubernetes does with pinned images)
 * and what only it reaches. A manifest a cached tag of the repository points at is refused: remove the
 * tag, or the tag would name a manifest that is gone.
 */
export async function removeDigest(deps: RemoveTagDeps, target: { upstream: string; repo: string; digest: string }, options: RemoveTagOptions = {}): Promise<RemovedCached> {
  const { upstream, repo, digest } = target;
  const tagged = [...new Set((await deps.meta.tagRecords(upstream, repo)).filter((r) => r.digest === digest).map((r) => r.tag))];
  if (tagged.length) {
    throw new OciError('DENIED', `cached tags point at this manifest (${tagged.join(', ')}): remove the tags instead (ocimirror rm <name>:<tag>), or the whole repository`, {
      status: 409,
      detail: { upstream, repo, digest, tags: tagged },
    });
  }
  // The bytes say whether it is cached: its metadata record outlives them.
  if (!(await deps.blobs.stat(digest)) || !(await manifestNode(deps, digest))) throw new OciError('MANIFEST_UNKNOWN', 'manifest is not cached', { detail: { upstream, repo, digest } });
  const freed = await freeUnreached(deps, [digest], (skip) => otherRoots(deps, { upstream, repo, roots: [digest] }, skip), options, async () => {});
  deps.logger.info({ upstream, repo, digest, freed_blobs: freed.freed.length, freed_bytes: freed.freedBytes, shared_blobs: freed.shared, dryRun: !!options.dryRun }, 'cached manifest removed');
  return { upstream, repo, tags: [], digests: [digest], ...freed, dryRun: !!options.dryRun };
}

/**
 * The roots of what stays: cachedRoots without the removed manifests (`skip`), less the repository's own
 * tags — except where a tag of another repository points at the same manifest.
 */
async function otherRoots(deps: RemoveTagDeps, target: { upstream: string; repo: string; roots: readonly string[] }, skip: Iterable<string>): Promise<Set<string>> {
  const roots = await cachedRoots(deps, { skip: new Set(skip) });
  const removed = new Set(target.roots);
  const elsewhere = new Set<string>();
  for (const { upstream, repo } of await deps.meta.listRepos()) {
    if (upstream === target.upstream && repo === target.repo) continue;
    for (const record of await deps.meta.tagRecords(upstream, repo)) if (removed.has(record.digest)) elsewhere.add(record.digest);
  }
  for (const digest of removed) if (!elsewhere.has(digest)) roots.delete(digest);
  return roots;
}
