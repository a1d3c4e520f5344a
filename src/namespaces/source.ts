// The read interface every endpoint family calls: one per request, whichever source answers it
// (hosted repositories, the mirror, or an override of an upstream repository in front of the mirror).
import type { BlobStream } from '../store/blob-stream.ts';
import type { ByteRange } from '../store/blob-store.ts';
import type { AcceptSet } from '../oci/media-types.ts';
import { ofArtifactType, referrersIndex, type ReferrerDescriptor } from '../oci/referrers.ts';

/** Where an answer came from: the mirror's cache (fresh or stale), its upstream, or hosted content. */
export type ManifestSource = 'hit' | 'miss' | 'stale' | 'hosted';
export type BlobSource = 'cache' | 'upstream' | 'hosted';

export interface ManifestAnswer {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Uint8Array;
  readonly cache: ManifestSource;
}

export interface BlobHead {
  /** Total size; undefined only while downloading from an upstream that sent no Content-Length. */
  readonly size: number | undefined;
  readonly source: BlobSource;
}

export interface BlobAnswer extends BlobHead {
  open(range?: ByteRange): Promise<BlobStream>;
}

export interface TagsQuery {
  readonly n?: number;
  readonly last?: string;
}

export interface TagsAnswer {
  /** The JSON body, `{"name": ..., "tags": [...]}`. */
  readonly body: Uint8Array;
  /** The next page's Link header value, already naming the repository as the client did. */
  readonly link?: string;
  readonly cache: string;
}

export interface ReferrersAnswer {
  /** An OCI image index of the referrers' descriptors. */
  readonly body: Uint8Array;
  /** Whether the `artifactType` filter was applied (the `OCI-Filters-Applied` header). */
  readonly filtered: boolean;
  readonly cache: string;
}

export interface ReadSource {
  manifest(reference: string, accept: AcceptSet): Promise<ManifestAnswer>;
  headBlob(digest: string): Promise<BlobHead>;
  blob(digest: string): Promise<BlobAnswer>;
  tags(query: TagsQuery): Promise<TagsAnswer>;
  /** The manifests whose subject is `digest` (a valid digest), only those of `artifactType` when given. */
  referrers(digest: string, artifactType: string | undefined): Promise<ReferrersAnswer>;
}

/** One page of sorted tags: at most `n` after `last`, and the query of the next page if there is one. */
export function pageOf(sorted: readonly string[], query: TagsQuery): { tags: string[]; next?: { n: number; last: string } } {
  const after = query.last === undefined ? sorted : sorted.filter((t) => t > query.last!);
  const tags = query.n === undefined ? [...after] : after.slice(0, query.n);
  if (query.n !== undefined && tags.length > 0 && after.length > tags.length) return { tags, next: { n: query.n, last: tags[tags.length - 1]! } };
  return { tags };
}

/** The tags/list answer for a list of tags the mirror holds itself (hosted, or merged with an override). */
export function tagsAnswer(clientName: string, sorted: readonly string[], query: TagsQuery, cache: string, ns?: string): TagsAnswer {
  const page = pageOf(sorted, query);
  const body = Buffer.from(JSON.stringify({ name: clientName, tags: page.tags }));
  if (!page.next) return { body, cache };
  const params = new URLSearchParams({ n: String(page.next.n), last: page.next.last });
  if (ns !== undefined) params.set('ns', ns);
  return { body, link: `</v2/${clientName}/tags/list?${params}>; rel="next"`, cache };
}

/** The referrers answer for a list the mirror holds itself (hosted, or merged with an override), filtered here. */
export function referrersAnswer(descriptors: readonly ReferrerDescriptor[], artifactType: string | undefined, cache: string): ReferrersAnswer {
  return { body: referrersIndex(ofArtifactType(descriptors, artifactType)), filtered: artifactType !== undefined, cache };
}
