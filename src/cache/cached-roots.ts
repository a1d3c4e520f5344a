// The roots of what the cache holds: every cached tag's manifests, and every stored manifest the mirror
// fetched (an image pulled only by digest, as Kubernetes does with pinned images, has no tag but must
// keep its layers). `rm` keeps what these reach; garbage collection frees what neither they nor hosted
// repositories reach.
import type { ProxyDeps } from '../mirror/deps.ts';

export type CachedRootsDeps = Pick<ProxyDeps, 'blobs' | 'meta' | 'manifests'>;

/** Metadata lookups in flight at once. */
const BATCH = 64;

export async function cachedRoots(
  deps: CachedRootsDeps,
  options: { except?: { upstream: string; repo: string; tag: string }; skip?: ReadonlySet<string> } = {},
): Promise<Set<string>> {
  const { except, skip } = options;
  const roots = new Set<string>();
  for (const { upstream, repo } of await deps.meta.listRepos()) {
    for (const record of await deps.meta.tagRecords(upstream, repo)) {
      const excluded = except && upstream === except.upstream && repo === except.repo && record.tag === except.tag;
      if (!excluded) roots.add(record.digest);
    }
  }
  let batch: string[] = [];
  const flush = async () => {
    const known = await Promise.all(batch.map(async (d) => (deps.manifests.has(d) || (await deps.meta.getManifest(d).catch(() => undefined)) ? d : undefined)));
    for (const d of known) if (d) roots.add(d);
    batch = [];
  };
  for await (const blob of deps.blobs.list()) {
    if (skip?.has(blob.digest) || roots.has(blob.digest)) continue;
    batch.push(blob.digest);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return roots;
}
