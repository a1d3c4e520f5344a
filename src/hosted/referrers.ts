// The referrers of a digest in a hosted repository (or override): its manifests pushed with that
// `subject`, described from the index's records (put-manifest.ts keeps artifactType and annotations).
import type { ReferrerDescriptor } from '../oci/referrers.ts';
import type { HostedDeps } from './deps.ts';

export async function hostedReferrers(deps: Pick<HostedDeps, 'index'>, key: string, subject: string): Promise<ReferrerDescriptor[]> {
  const digests = await deps.index.referrers(key, subject);
  const records = await Promise.all(digests.map(async (digest) => ({ digest, record: await deps.index.getManifest(key, digest) })));
  // A manifest deleted between the two reads is simply no longer a referrer.
  return records.flatMap(({ digest, record }) =>
    record
      ? [
          {
            mediaType: record.mediaType,
            digest,
            size: record.size,
            ...(record.artifactType !== undefined ? { artifactType: record.artifactType } : {}),
            ...(record.annotations !== undefined ? { annotations: record.annotations } : {}),
          },
        ]
      : [],
  );
}
