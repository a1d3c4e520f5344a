// Online garbage collection: mark what hosted repositories and the cache still reach, then sweep the
// rest out of the blob store, while pulls and pushes go on (no read-only window).
//
// Mark, per hosted repository: the manifests its tags reach (and, unless deleteUntagged, every manifest
// it holds), the children of kept indexes, the referrers of kept manifests, and manifests pushed within
// the grace time; then the blobs those manifests reference, and links made within the grace time (a push
// uploads layers before its manifest). Cache: what cached tags and fetched manifests reach.
// Sweep: hosted manifests and links not kept are removed; pins of content no repository keeps are
// dropped (unless renewed within the grace time); blobs nothing keeps, older than the grace time, not
// being read or downloaded and not pinned again meanwhile are deleted.
// Concurrent pushes are safe because they pin before they store or link, every pin is renewed on use, and
// every delete asks again (BlobStore.delete's keep) after the blob was moved out of sight.
import type { HostedIndex, HostedManifest } from '../store/hosted-index.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { BlobStore } from '../store/blob-store.ts';
import { cachedRoots, type CachedRootsDeps } from '../cache/cached-roots.ts';
import { digestsOf, walkManifests } from '../cache/manifest-tree.ts';
import type { DiskBudget } from './disk-budget.ts';

export interface GcDeps extends CachedRootsDeps {
  readonly index: HostedIndex;
  readonly blobs: BlobStore;
  readonly budget: Pick<DiskBudget, 'removed' | 'unpinned'>;
  readonly inUse: (digest: string) => boolean;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
}

export interface GcOptions {
  readonly dryRun: boolean;
  readonly deleteUntagged: boolean;
  readonly graceMs: number;
}

export interface GcReport {
  readonly dryRun: boolean;
  /** Hosted manifests removed from their repositories (untagged ones, with deleteUntagged). */
  readonly manifestsRemoved: number;
  /** Hosted blob links removed (blobs no kept manifest of that repository references). */
  readonly linksRemoved: number;
  /** Blobs and manifests deleted from the store, and their bytes. */
  readonly freedObjects: number;
  readonly freedBytes: number;
  /** What stays: reached by hosted repositories, by the cache, or too young to judge. */
  readonly keptObjects: number;
  readonly durationMs: number;
}

export async function collectGarbage(deps: GcDeps, options: GcOptions): Promise<GcReport> {
  const started = deps.now();
  const cutoff = started - options.graceMs;
  const hosted = new Set<string>();
  let manifestsRemoved = 0;
  let linksRemoved = 0;
  for (const repo of await deps.index.listRepos({ withLinksOnly: true })) {
    const result = await collectRepository(deps, repo, options, cutoff);
    result.kept.forEach((d) => hosted.add(d));
    manifestsRemoved += result.manifestsRemoved;
    linksRemoved += result.linksRemoved;
  }
  const cached = digestsOf(await walkManifests(deps, await cachedRoots(deps)));

  const unpinned = new Set<string>();
  for await (const pin of deps.index.listPins()) {
    if (hosted.has(pin.digest) || pin.pinnedAt >= cutoff) continue;
    if (options.dryRun || (await deps.index.unpin(pin.digest, options.graceMs, async () => false))) unpinned.add(pin.digest);
  }

  let freedObjects = 0;
  let freedBytes = 0;
  let keptObjects = 0;
  for await (const blob of deps.blobs.list()) {
    const pinned = !unpinned.has(blob.digest) && (await deps.index.isPinned(blob.digest));
    const keep = hosted.has(blob.digest) || cached.has(blob.digest) || pinned || deps.inUse(blob.digest) || blob.modifiedAt >= cutoff;
    if (keep) {
      keptObjects++;
      if (unpinned.has(blob.digest) && !options.dryRun) deps.budget.unpinned(blob.size, false);
      continue;
    }
    // A push may pin it, or a client start reading it, while it is out of sight: then it goes back.
    const deleted = options.dryRun || (await deps.blobs.delete(blob.digest, async () => deps.inUse(blob.digest) || (await deps.index.isPinned(blob.digest))));
    if (!deleted) {
      keptObjects++;
      continue;
    }
    freedObjects++;
    freedBytes += blob.size;
    if (options.dryRun) continue;
    deps.manifests.delete(blob.digest);
    await deps.meta.forgetBlob(blob.digest).catch(() => {});
    if (unpinned.has(blob.digest)) deps.budget.unpinned(blob.size, true);
    else deps.budget.removed(blob.size);
  }

  const report: GcReport = { dryRun: options.dryRun, manifestsRemoved, linksRemoved, freedObjects, freedBytes, keptObjects, durationMs: deps.now() - started };
  deps.metrics.gcRuns.inc({ result: options.dryRun ? 'dry_run' : 'done' });
  if (!options.dryRun) {
    deps.metrics.gcFreedObjects.inc(freedObjects);
    deps.metrics.gcFreedBytes.inc(freedBytes);
    deps.metrics.gcLastRun.set(deps.now() / 1000);
  }
  deps.logger.info(
    {
      dry_run: options.dryRun,
      delete_untagged: options.deleteUntagged,
      manifests_removed: manifestsRemoved,
      links_removed: linksRemoved,
      freed_objects: freedObjects,
      freed_bytes: freedBytes,
      kept_objects: keptObjects,
      duration_ms: report.durationMs,
    },
    'garbage collection finished',
  );
  return report;
}

/** Marks one hosted repository; removes (unless a dry run) its manifests and links that are not kept. */
async function collectRepository(deps: GcDeps, repo: string, options: GcOptions, cutoff: number): Promise<{ kept: Set<string>; manifestsRemoved: number; linksRemoved: number }> {
  const records = new Map<string, HostedManifest>();
  for (const digest of await deps.index.listManifests(repo)) {
    const record = await deps.index.getManifest(repo, digest);
    if (record) records.set(digest, record);
  }
  const keptManifests = new Set<string>();
  for (const tag of await deps.index.listTags(repo)) {
    const digest = await deps.index.getTag(repo, tag);
    if (digest && records.has(digest)) keptManifests.add(digest);
  }
  for (const [digest, record] of records) {
    if (!options.deleteUntagged || record.pushedAt >= cutoff) keptManifests.add(digest);
  }
  // Children of kept indexes and referrers of kept manifests, until nothing changes.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [digest, record] of records) {
      if (keptManifests.has(digest)) continue;
      const child = [...keptManifests].some((kept) => records.get(kept)!.references.includes(digest));
      const referrer = record.subject !== undefined && keptManifests.has(record.subject);
      if (child || referrer) {
        keptManifests.add(digest);
        grew = true;
      }
    }
  }
  const keptBlobs = new Set<string>();
  for (const digest of keptManifests) for (const ref of records.get(digest)!.references) if (!records.has(ref)) keptBlobs.add(ref);

  let manifestsRemoved = 0;
  for (const digest of records.keys()) {
    if (keptManifests.has(digest)) continue;
    manifestsRemoved++;
    if (!options.dryRun) await deps.index.deleteManifest(repo, digest);
  }
  let linksRemoved = 0;
  for (const link of await deps.index.listBlobLinks(repo)) {
    if (keptBlobs.has(link.digest)) continue;
    if (link.linkedAt >= cutoff) {
      keptBlobs.add(link.digest);
      continue;
    }
    linksRemoved++;
    if (!options.dryRun) await deps.index.unlinkBlob(repo, link.digest);
  }
  return { kept: new Set([...keptManifests, ...keptBlobs]), manifestsRemoved, linksRemoved };
}
