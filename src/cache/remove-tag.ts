// `ocimirror rm`: drops a cached tag (every Accept-class answer of it), then frees the manifests, configs
// and layers that nothing else cached still uses. "Still used" means reachable from any other cached tag,
// or from any other manifest the store holds (an image pulled only by digest, as Kubernetes does with
// pinned images, has no tag but must keep its layers). A blob a download is writing is never touched,
// nor content a hosted repository or override holds (pushed data, not cache).
import { OciError } from '../oci/errors.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { cachedRoots } from './cached-roots.ts';
import { digestsOf, walkManifests } from './manifest-tree.ts';

/** What removing a cached tag touches. */
export type RemoveTagDeps = Pick<ProxyDeps, 'blobs' | 'meta' | 'manifests' | 'pins' | 'inUse' | 'budget' | 'logger'>;

export interface RemoveTagOptions {
  /** Report what would be freed without changing anything. */
  readonly dryRun?: boolean;
}

export interface FreedBlob {
  readonly digest: string;
  readonly size: number;
}

export interface RemovedTag {
  readonly upstream: string;
  readonly repo: string;
  readonly tag: string;
  /** The manifests the tag pointed at (one per distinct Accept-class answer). */
  readonly digests: readonly string[];
  /** Manifests and blobs deleted from this replica's disk. */
  readonly freed: readonly FreedBlob[];
  readonly freedBytes: number;
  /** Digests of the image that stay because other cached images use them. */
  readonly shared: number;
  readonly dryRun: boolean;
}


export async function removeTag(deps: RemoveTagDeps, target: { upstream: string; repo: string; tag: string }, options: RemoveTagOptions = {}): Promise<RemovedTag> {
  const { upstream, repo, tag } = target;
  const answers = (await deps.meta.tagRecords(upstream, repo)).filter((r) => r.tag === tag);
  if (answers.length === 0) throw new OciError('MANIFEST_UNKNOWN', 'tag is not cached', { detail: { upstream, repo, tag } });
  const roots = [...new Set(answers.map((a) => a.digest))];

  const image = await walkManifests(deps, roots);
  const candidates = digestsOf(image);
  const keep = digestsOf(await walkManifests(deps, await cachedRoots(deps, { except: target, skip: new Set(image.manifests.keys()) })));
  const hosted = new Set((await Promise.all([...candidates].map(async (d) => ((await deps.pins.isPinned(d)) ? d : undefined)))).filter((d) => d !== undefined));
  const doomed = [...candidates].filter((d) => !keep.has(d) && !deps.inUse(d) && !hosted.has(d));

  const freed: FreedBlob[] = [];
  if (!options.dryRun) {
    await deps.meta.deleteTag(upstream, repo, tag);
    // Manifests first: from here on a pull of the tag goes upstream again instead of finding half an image.
    const manifestsFirst = [...doomed.filter((d) => image.manifests.has(d)), ...doomed.filter((d) => !image.manifests.has(d))];
    for (const digest of manifestsFirst) {
      deps.manifests.delete(digest);
      const held = await deps.blobs.stat(digest);
      await deps.meta.forgetBlob(digest).catch(() => {});
      // A push may claim the blob meanwhile: the store asks again before the bytes go.
      if (held && (await deps.blobs.delete(digest, () => deps.pins.isPinned(digest)))) {
        freed.push({ digest, size: held.size });
        deps.budget.removed(held.size);
      }
    }
  } else {
    for (const digest of doomed) {
      const held = await deps.blobs.stat(digest);
      if (held) freed.push({ digest, size: held.size });
    }
  }
  const freedBytes = freed.reduce((sum, b) => sum + b.size, 0);
  const shared = [...candidates].filter((d) => keep.has(d) || hosted.has(d)).length;
  deps.logger.info({ upstream, repo, tag, digests: roots, freed_blobs: freed.length, freed_bytes: freedBytes, shared_blobs: shared, dryRun: !!options.dryRun }, 'cached tag removed');
  return { upstream, repo, tag, digests: roots, freed, freedBytes, shared, dryRun: !!options.dryRun };
}
