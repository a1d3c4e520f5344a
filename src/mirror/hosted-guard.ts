// Blobs and manifests are stored once, whoever brought them. Content that was pushed to a hosted
// repository is served through an upstream's name only once the mirror has fetched it from that
// upstream (its metadata records the fetch); otherwise the mirror asks the upstream as for any miss.
// So knowing a digest that only a hosted repository holds is not enough to read it.
import type { ManifestRecord } from '../store/metadata-store.ts';
import type { ProxyDeps } from './deps.ts';
import { metadataFailed } from './metadata-failed.ts';

type GuardDeps = Pick<ProxyDeps, 'pins' | 'meta' | 'metrics' | 'logger'>;

export async function servableByMirror(deps: GuardDeps, digest: string, kind: 'blob' | 'manifest'): Promise<boolean> {
  if (kind === 'manifest') return (await servableManifest(deps, digest)).servable;
  // Either suffices. A blob's pin is asked first: a blob pull needs no metadata otherwise, so a
  // metadata store outage stays out of its way.
  return !(await deps.pins.isPinned(digest)) || (await deps.meta.getBlob(digest).catch((err: unknown) => void metadataFailed(deps, err))) !== undefined;
}

/**
 * The same rule for a manifest, with the record it read (undefined: none, or the store failed), which
 * a manifest pull would read next anyway. The record is asked first: the embedded store answers from
 * memory where the pin is a file.
 */
export async function servableManifest(deps: GuardDeps, digest: string): Promise<{ readonly servable: boolean; readonly record: ManifestRecord | undefined }> {
  const record = await deps.meta.getManifest(digest).catch((err: unknown) => void metadataFailed(deps, err));
  return { servable: record !== undefined || !(await deps.pins.isPinned(digest)), record };
}
