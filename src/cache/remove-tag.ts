// `ocimirror rm`: drops a cached tag (every Accept-class answer of it), then frees the manifests, configs
// and layers that nothing else cached still uses. "Still used" means reachable from any other cached tag,
// or from any other manifest the store holds (an image pulled only by digest, as Kubernetes does with
// pinned images, has no tag but must keep its layers). A blob a download is writing is never touched,
// nor content a hosted repository or override holds (pushed data, not cache).
import { OciError } from '../oci/errors.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { cachedRoots } from './cached-roots.ts';
import { freeUnreached } from './free-unreached.ts';

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

  const { freed, freedBytes, shared } = await freeUnreached(
    deps,
    roots,
    (skip) => cachedRoots(deps, { except: target, skip }),
    options,
    () => deps.meta.deleteTag(upstream, repo, tag),
  );
  deps.logger.info({ upstream, repo, tag, digests: roots, freed_blobs: freed.length, freed_bytes: freedBytes, shared_blobs: shared, dryRun: !!options.dryRun }, 'cached tag removed');
  return { upstream, repo, tag, digests: roots, freed, freedBytes, shared, dryRun: !!options.dryRun };
}
