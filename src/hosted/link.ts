// Linking content into a hosted repository: pinned first (so eviction spares it from then on), then
// linked; bytes that were cache until now are counted as hosted from now on.
import type { HostedDeps } from './deps.ts';

/** Runs `store` (which makes the bytes present) between pinning and linking, and keeps the budget's books. */
export async function pinAround<T extends { size: number }>(deps: HostedDeps, digest: string, store: () => Promise<T>): Promise<T> {
  const [wasPinned, held] = await Promise.all([deps.index.isPinned(digest), deps.blobs.stat(digest)]);
  await deps.index.pin(digest);
  const stored = await store();
  if (!wasPinned) deps.usage.pinned(stored.size, held !== undefined);
  return stored;
}

/** Links a blob the store holds (mounted, or fetched for an override) into the repository. */
export async function linkHeld(deps: HostedDeps, key: string, digest: string): Promise<boolean> {
  const stored = await pinAround(deps, digest, async () => (await deps.blobs.stat(digest)) ?? { size: -1 });
  if (stored.size < 0) return false;
  await deps.index.linkBlob(key, digest, stored.size);
  return true;
}
