// An upstream repository with pushed overrides: what was pushed answers first (a tag, a manifest, a
// blob the override links), everything else comes through the mirror. tags/list and the referrers list
// merge both.
import { mergeReferrers, referrersOf, type ReferrerDescriptor } from '../oci/referrers.ts';
import type { BlobAnswer, ManifestAnswer, ReadSource } from './source.ts';
import { referrersAnswer, tagsAnswer } from './source.ts';

export interface OverrideParts {
  readonly mirror: ReadSource;
  manifest(reference: string): Promise<ManifestAnswer | undefined>;
  blob(digest: string): Promise<BlobAnswer | undefined>;
  /** The pushed tags, sorted. */
  tags(): Promise<string[]>;
  /** The pushed manifests whose subject is `digest`. */
  referrers(digest: string): Promise<ReferrerDescriptor[]>;
  readonly clientName: string;
  readonly ns: string | undefined;
}

export function overrideSource(parts: OverrideParts): ReadSource {
  const { mirror } = parts;
  return {
    manifest: async (reference, accept) => (await parts.manifest(reference)) ?? mirror.manifest(reference, accept),
    headBlob: async (digest) => (await parts.blob(digest)) ?? mirror.headBlob(digest),
    blob: async (digest) => (await parts.blob(digest)) ?? mirror.blob(digest),
    async tags(query) {
      const local = await parts.tags();
      if (local.length === 0) return mirror.tags(query);
      // The upstream's whole list (when it answers) with the pushed tags added, paged here.
      const upstream = await mirror.tags({}).then(
        (answer) => (JSON.parse(Buffer.from(answer.body).toString('utf8')) as { tags?: unknown }).tags,
        () => [],
      );
      const merged = new Set([...(Array.isArray(upstream) ? upstream.filter((t): t is string => typeof t === 'string') : []), ...local]);
      return tagsAnswer(parts.clientName, [...merged].sort(), query, 'hosted', parts.ns);
    },
    async referrers(digest, artifactType) {
      const local = await parts.referrers(digest);
      if (local.length === 0) return mirror.referrers(digest, artifactType);
      // The upstream's (when it answers) after the pushed ones; a digest in both is listed once.
      const upstream = await mirror.referrers(digest, artifactType).then(
        (answer) => referrersOf(answer.body) ?? [],
        () => [],
      );
      return referrersAnswer(mergeReferrers(local, upstream), artifactType, 'hosted');
    },
  };
}
