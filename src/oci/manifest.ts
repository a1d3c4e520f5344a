// Just enough of a manifest's JSON to know what it points at (for ls/rm/warm and reference tracking).
import { OciError } from './errors.ts';
import { isManifestType } from './media-types.ts';

/** distribution refuses manifests over 4 MiB; so does ocimirror, pulled (502) or pushed (413). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string };
}

export interface ManifestSummary {
  /** The body's own mediaType field, when present. */
  readonly mediaType?: string;
  /** config + layers of an image manifest, or the child manifests of an index. */
  readonly config?: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly manifests: readonly Descriptor[];
}

export function summarizeManifest(body: Uint8Array): ManifestSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new OciError('MANIFEST_INVALID', 'manifest is not valid JSON', { status: 502 });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new OciError('MANIFEST_INVALID', 'manifest is not a JSON object', { status: 502 });
  const m = doc as { mediaType?: unknown; schemaVersion?: unknown; config?: unknown; layers?: unknown; manifests?: unknown };
  if (m.schemaVersion === 1) throw new OciError('MANIFEST_INVALID', 'Docker schema1 manifests are not supported', { status: 502 });
  const list = (value: unknown): Descriptor[] => (Array.isArray(value) ? value.filter(isDescriptor) : []);
  return {
    ...(typeof m.mediaType === 'string' ? { mediaType: m.mediaType } : {}),
    ...(isDescriptor(m.config) ? { config: m.config } : {}),
    layers: list(m.layers),
    manifests: list(m.manifests),
  };
}

/** The media type to serve: the upstream's Content-Type when it is a manifest type, else the body's field. */
export function resolveManifestMediaType(contentType: string, summary: ManifestSummary): string | undefined {
  if (isManifestType(contentType)) return contentType;
  if (summary.mediaType && isManifestType(summary.mediaType)) return summary.mediaType;
  if (summary.manifests.length > 0) return 'application/vnd.oci.image.index.v1+json';
  if (summary.config) return 'application/vnd.oci.image.manifest.v1+json';
  return undefined;
}

function isDescriptor(value: unknown): value is Descriptor {
  if (!value || typeof value !== 'object') return false;
  const d = value as Record<string, unknown>;
  return typeof d.digest === 'string' && typeof d.size === 'number' && typeof d.mediaType === 'string';
}
