// A repository's tags as the UI shows them, from whichever source holds them: a hosted repository's
// index, or for a mirrored name the cache and any pushed override in front of it.
import { describeRepository, repositoryUsage } from '../cache/inventory.ts';
import { inspectImage } from '../cache/inspect.ts';
import type { Target } from '../namespaces/resolve.ts';
import { OciError } from '../oci/errors.ts';
import type { RegistryDeps } from '../routes/deps.ts';

export interface TagRow {
  readonly tag: string;
  readonly source: 'hosted' | 'override' | 'cached';
  readonly digest: string;
  readonly mediaType: string;
  readonly sizeBytes: number;
  /** "linux/amd64", ... */
  readonly platforms: readonly string[];
  /** Pushed (hosted, override) or last confirmed by the upstream (cached). */
  readonly at: number | undefined;
  readonly lastPull: number | undefined;
}

export async function repositoryTags(registry: RegistryDeps, target: Target): Promise<TagRow[]> {
  const deps = registry.mirror;
  const rows: TagRow[] = [];
  const key = target.kind === 'hosted' ? target.key : target.override;
  if (key) {
    for (const tag of await registry.hosted.index.listTags(key)) {
      const digest = await registry.hosted.index.getTag(key, tag);
      const manifest = digest && (await registry.hosted.index.getManifest(key, digest));
      if (!digest || !manifest) continue;
      const usage = await repositoryUsage(deps, { tags: 1, digests: [digest] });
      rows.push({ tag, source: target.kind === 'hosted' ? 'hosted' : 'override', digest, mediaType: manifest.mediaType, sizeBytes: usage.sizeBytes, platforms: await platformsOf(registry, digest), at: manifest.pushedAt, lastPull: usage.lastAccess });
    }
  }
  if (target.kind === 'mirrored') {
    const { upstream, repo } = { upstream: target.routed.upstream.name, repo: target.routed.repo };
    const detail = await describeRepository(deps, upstream, repo).catch((err: unknown) => {
      if (err instanceof OciError && err.code === 'NAME_UNKNOWN') return undefined;
      throw err;
    });
    for (const t of detail?.tags ?? []) {
      const newest = [...t.manifests].sort((a, b) => b.fetchedAt - a.fetchedAt)[0]!;
      rows.push({ tag: t.tag, source: 'cached', digest: newest.digest, mediaType: newest.mediaType, sizeBytes: t.sizeBytes, platforms: await platformsOf(registry, newest.digest), at: newest.fetchedAt, lastPull: t.lastAccess });
    }
  }
  return rows;
}

/** The platforms of an index, or the one of an image manifest (from its config); none when not held. */
async function platformsOf(registry: RegistryDeps, digest: string): Promise<string[]> {
  try {
    const inspected = await inspectImage(registry.mirror, { upstream: 'hosted', repo: '', reference: digest });
    const text = (p: { os?: string; architecture?: string; variant?: string } | undefined) => [p?.os, p?.architecture, p?.variant].filter(Boolean).join('/');
    if (inspected.platforms) return inspected.platforms.map((d) => text(d.platform)).filter((s) => s && s !== 'unknown/unknown');
    return inspected.platform ? [text(inspected.platform)] : [];
  } catch {
    return [];
  }
}
