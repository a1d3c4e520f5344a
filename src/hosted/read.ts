// Pulls from hosted repositories (and from overrides): answered from the hosted index and the blob
// store only, never from an upstream, so they work offline. A repository serves only what it links:
// knowing a digest that another repository holds is not enough.
import { looksLikeDigest, parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import { isTag } from '../oci/reference.ts';
import { referrersAnswer, tagsAnswer, type BlobAnswer, type ManifestAnswer, type ReadSource, type TagsQuery } from '../namespaces/source.ts';
import type { HostedDeps } from './deps.ts';
import { hostedReferrers } from './referrers.ts';

/** The manifest a hosted repository holds for a tag or digest, or undefined. */
export async function findManifest(deps: HostedDeps, key: string, reference: string): Promise<ManifestAnswer | undefined> {
  let digest: string | undefined;
  if (looksLikeDigest(reference)) digest = parseDigest(reference).value;
  else if (isTag(reference)) digest = await deps.index.getTag(key, reference);
  if (!digest) return undefined;
  const record = await deps.index.getManifest(key, digest);
  if (!record) return undefined;
  const body = await deps.blobs.read(digest);
  if (!body) {
    deps.logger.error({ repo: key, digest }, 'hosted manifest is recorded but its bytes are missing from the blob store');
    return undefined;
  }
  return { digest, mediaType: record.mediaType, body, cache: 'hosted' };
}

/** A blob the hosted repository links, or undefined. */
export async function findBlob(deps: HostedDeps, key: string, digestText: string): Promise<BlobAnswer | undefined> {
  const digest = parseDigest(digestText).value;
  if (!(await deps.index.hasBlob(key, digest))) return undefined;
  const held = await deps.blobs.stat(digest);
  if (!held) {
    deps.logger.error({ repo: key, digest }, 'hosted blob is linked but missing from the blob store');
    return undefined;
  }
  return {
    size: held.size,
    source: 'hosted',
    open: async (range) => {
      const stream = await deps.blobs.open(digest, range);
      if (!stream) throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });
      return stream;
    },
  };
}

export function hostedSource(deps: HostedDeps, key: string, clientName: string, ns?: string): ReadSource {
  const blob = async (digest: string) => {
    const found = await findBlob(deps, key, digest);
    if (!found) throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });
    return found;
  };
  return {
    async manifest(reference) {
      const found = await findManifest(deps, key, reference);
      if (!found) throw new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { detail: { name: clientName, reference: reference.slice(0, 200) } });
      return found;
    },
    headBlob: blob,
    blob,
    async tags(query: TagsQuery) {
      const tags = await deps.index.listTags(key);
      if (tags.length === 0) {
        throw new OciError('NAME_UNKNOWN', 'repository name not known to registry', { detail: { name: clientName } });
      }
      return tagsAnswer(clientName, tags, query, 'hosted', ns);
    },
    // distribution-spec: an unknown subject (or repository) still gets 200 and an empty list.
    referrers: async (digest, artifactType) => referrersAnswer(await hostedReferrers(deps, key, digest), artifactType, 'hosted'),
  };
}
