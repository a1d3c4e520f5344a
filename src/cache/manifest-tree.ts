// What cached manifests point at: an index at child manifests, an image manifest at its config and
// layers. ls sizes images with it and rm computes what only one image uses. Reads the cache only.
import { MAX_MANIFEST_BYTES, resolveManifestMediaType, summarizeManifest } from '../oci/manifest.ts';
import { isIndexType } from '../oci/media-types.ts';
import type { ProxyDeps } from '../mirror/deps.ts';

/** What walking cached manifests reads. */
export type ManifestTreeDeps = Pick<ProxyDeps, 'blobs' | 'meta' | 'manifests'>;

/** Metadata lookups in flight at once while walking. */
const BATCH = 64;

export interface ManifestNode {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** Child manifests (of an index). */
  readonly manifests: readonly string[];
  /** Config and layers (of an image manifest). */
  readonly blobs: readonly string[];
}

export interface ManifestTree {
  /** Every manifest reached, with its node when the cache holds it (undefined: referenced, not cached). */
  readonly manifests: ReadonlyMap<string, ManifestNode | undefined>;
  /** Every config and layer reached. */
  readonly blobs: ReadonlySet<string>;
}

/**
 * A cached manifest's references: from the hot LRU, the metadata store, or (metadata lost, e.g. a
 * flushed Redis) the manifest body on disk. Undefined when this replica does not hold the manifest.
 */
export async function manifestNode(deps: ManifestTreeDeps, digest: string): Promise<ManifestNode | undefined> {
  const record = deps.manifests.get(digest)?.record ?? (await deps.meta.getManifest(digest).catch(() => undefined));
  if (record) {
    const index = isIndexType(record.mediaType);
    return { digest, mediaType: record.mediaType, size: record.size, manifests: index ? record.references : [], blobs: index ? [] : record.references };
  }
  const held = await deps.blobs.stat(digest);
  if (!held || held.size > MAX_MANIFEST_BYTES) return undefined;
  const body = await deps.blobs.read(digest);
  if (!body) return undefined;
  try {
    const summary = summarizeManifest(body);
    const mediaType = resolveManifestMediaType('', summary);
    if (!mediaType) return undefined;
    return {
      digest,
      mediaType,
      size: body.byteLength,
      manifests: summary.manifests.map((d) => d.digest),
      blobs: [summary.config, ...summary.layers].flatMap((d) => (d ? [d.digest] : [])),
    };
  } catch {
    return undefined;
  }
}

/** Everything reachable from `roots` (manifest digests), following indexes to their children. */
export async function walkManifests(deps: ManifestTreeDeps, roots: Iterable<string>): Promise<ManifestTree> {
  const manifests = new Map<string, ManifestNode | undefined>();
  const blobs = new Set<string>();
  let level = [...new Set(roots)];
  while (level.length > 0) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += BATCH) {
      const batch = level.slice(i, i + BATCH).filter((d) => !manifests.has(d));
      for (const digest of batch) manifests.set(digest, undefined);
      const nodes = await Promise.all(batch.map((digest) => manifestNode(deps, digest)));
      for (const node of nodes) {
        if (!node) continue;
        manifests.set(node.digest, node);
        for (const child of node.manifests) if (!manifests.has(child)) next.push(child);
        for (const blob of node.blobs) blobs.add(blob);
      }
    }
    level = [...new Set(next)];
  }
  return { manifests, blobs };
}

/** Every digest of a tree (manifests and blobs) that this replica holds or references. */
export function digestsOf(tree: ManifestTree): Set<string> {
  return new Set([...tree.manifests.keys(), ...tree.blobs]);
}
