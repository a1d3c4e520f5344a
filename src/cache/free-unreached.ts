// What `rm` frees once it drops cached tags: every manifest and blob the dropped roots reach that nothing
// kept reaches, is in use, or a hosted repository holds. Manifests go first, so that from then on a pull
// goes upstream again instead of finding half an image; a push may pin a blob meanwhile, so the store asks
// again before the bytes go.
import { digestsOf, walkManifests } from './manifest-tree.ts';
import type { FreedBlob, RemoveTagDeps, RemoveTagOptions } from './remove-tag.ts';

export async function freeUnreached(
  deps: RemoveTagDeps,
  roots: readonly string[],
  /** The roots of what stays, given the dropped image's own manifests (to leave out). */
  keepRoots: (imageManifests: ReadonlySet<string>) => Promise<Set<string>>,
  options: RemoveTagOptions,
  drop: () => Promise<void>,
): Promise<{ freed: FreedBlob[]; freedBytes: number; shared: number }> {
  const image = await walkManifests(deps, roots);
  const candidates = digestsOf(image);
  const keep = digestsOf(await walkManifests(deps, await keepRoots(new Set(image.manifests.keys()))));
  const hosted = new Set((await Promise.all([...candidates].map(async (d) => ((await deps.pins.isPinned(d)) ? d : undefined)))).filter((d) => d !== undefined));
  const doomed = [...candidates].filter((d) => !keep.has(d) && !deps.inUse(d) && !hosted.has(d));

  const freed: FreedBlob[] = [];
  if (!options.dryRun) {
    await drop();
    for (const digest of [...doomed.filter((d) => image.manifests.has(d)), ...doomed.filter((d) => !image.manifests.has(d))]) {
      deps.manifests.delete(digest);
      const held = await deps.blobs.stat(digest);
      await deps.meta.forgetBlob(digest).catch(() => {});
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
  const shared = [...candidates].filter((d) => keep.has(d) || hosted.has(d)).length;
  return { freed, freedBytes: freed.reduce((sum, b) => sum + b.size, 0), shared };
}
