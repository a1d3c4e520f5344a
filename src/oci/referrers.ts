// The referrers list (distribution-spec v1.1 "Listing Referrers"): an OCI image index whose `manifests`
// are descriptors of the manifests that name a digest as their `subject`; and the tag that stands in for
// it on registries without the API (the "referrers tag schema").
import type { Digest } from './digest.ts';
import { OCI_INDEX } from './media-types.ts';

/** One entry of a referrers list: a manifest's descriptor, with its artifactType and annotations. */
export interface ReferrerDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The index body answering the referrers API. */
export function referrersIndex(descriptors: readonly ReferrerDescriptor[]): Uint8Array {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors }));
}

/** The descriptors listed in an index body; undefined when it is no JSON object with a `manifests` array. */
export function referrersOf(body: Uint8Array): ReferrerDescriptor[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
  const manifests = (doc as { manifests?: unknown } | null)?.manifests;
  if (!Array.isArray(manifests)) return undefined;
  return manifests.filter(isReferrer);
}

/** Only the referrers of that artifactType (the `?artifactType=` filter); all of them when undefined. */
export function ofArtifactType(descriptors: readonly ReferrerDescriptor[], artifactType: string | undefined): ReferrerDescriptor[] {
  return artifactType === undefined ? [...descriptors] : descriptors.filter((d) => d.artifactType === artifactType);
}

/** Both lists, the first one's entry winning for a digest both hold. */
export function mergeReferrers(first: readonly ReferrerDescriptor[], second: readonly ReferrerDescriptor[]): ReferrerDescriptor[] {
  const seen = new Set(first.map((d) => d.digest));
  return [...first, ...second.filter((d) => !seen.has(d.digest))];
}

/**
 * distribution-spec "Referrers Tag Schema": `<alg>-<ref>`, the algorithm cut to 32 characters and the
 * encoded part to 64, e.g. `sha256-<hex>`.
 */
export function referrersTag(digest: Digest): string {
  return `${digest.algorithm.slice(0, 32)}-${digest.hex.slice(0, 64)}`;
}

function isReferrer(value: unknown): value is ReferrerDescriptor {
  if (!value || typeof value !== 'object') return false;
  const d = value as Record<string, unknown>;
  return typeof d.digest === 'string' && typeof d.size === 'number' && typeof d.mediaType === 'string';
}
