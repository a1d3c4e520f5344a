// Deletes in a hosted repository (distribution-spec "Deleting"): by digest the manifest and every tag
// pointing at it, by tag only the tag, a blob only its link from this repository. The bytes stay
// until garbage collection finds nothing references them.
import { looksLikeDigest, parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import { isTag } from '../oci/reference.ts';
import type { HostedDeps } from './deps.ts';

export async function deleteManifest(deps: HostedDeps, key: string, reference: string, actor?: string): Promise<boolean> {
  let removed: boolean;
  if (looksLikeDigest(reference)) removed = await deps.index.deleteManifest(key, parseDigest(reference).value);
  else if (isTag(reference)) removed = await deps.index.deleteTag(key, reference);
  else removed = false;
  if (removed) deps.logger.info({ repo: key, reference, ...(actor ? { user: actor } : {}) }, 'manifest deleted');
  return removed;
}

export async function deleteBlob(deps: HostedDeps, key: string, digestText: string, actor?: string): Promise<boolean> {
  const digest = parseDigest(digestText).value;
  const removed = await deps.index.unlinkBlob(key, digest);
  if (removed) deps.logger.info({ repo: key, digest, ...(actor ? { user: actor } : {}) }, 'blob unlinked');
  return removed;
}

export function manifestUnknown(name: string, reference: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { detail: { name, reference: reference.slice(0, 200) } });
}
