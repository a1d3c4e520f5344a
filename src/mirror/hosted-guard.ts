// Blobs and manifests are stored once, whoever brought them. Content that was pushed to a hosted
// repository is served through an upstream's name only once the mirror has fetched it from that
// upstream (its metadata records the fetch); otherwise the mirror asks the upstream as for any miss.
// So knowing a digest that only a hosted repository holds is not enough to read it.
import type { ProxyDeps } from './deps.ts';
import { metadataFailed } from './metadata-failed.ts';

export async function servableByMirror(deps: Pick<ProxyDeps, 'pins' | 'meta' | 'metrics' | 'logger'>, digest: string, kind: 'blob' | 'manifest'): Promise<boolean> {
  const unpinned = async () => !(await deps.pins.isPinned(digest));
  const recorded = async () =>
    (await (kind === 'blob' ? deps.meta.getBlob(digest) : deps.meta.getManifest(digest)).catch((err: unknown) => void metadataFailed(deps, err))) !== undefined;
  // Either suffices. A manifest's record is asked first: a manifest pull reads it anyway, and the
  // embedded store answers from memory where the pin is a file. A blob's pin is asked first: a blob
  // pull needs no metadata otherwise, so a metadata store outage stays out of its way.
  return kind === 'manifest' ? (await recorded()) || (await unpinned()) : (await unpinned()) || (await recorded());
}
