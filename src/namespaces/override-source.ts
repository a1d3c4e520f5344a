// An upstream repository with pushed overrides: what was pushed answers first (a tag, a manifest, a
// blob the override links), everything else comes through the mirror. tags/list merges both lists.
import type { BlobAnswer, ManifestAnswer, ReadSource } from './source.ts';
import { tagsAnswer } from './source.ts';

export interface OverrideParts {
  readonly mirror: ReadSource;
  manifest(reference: string): Promise<ManifestAnswer | undefined>;
  blob(digest: string): Promise<BlobAnswer | undefined>;
  /** The pushed tags, sorted. */
  tags(): Promise<string[]>;
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
  };
}
