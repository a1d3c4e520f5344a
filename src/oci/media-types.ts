// Manifest media types and Accept negotiation (distribution-spec "Pulling manifests", image-spec media types).

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_SCHEMA1 = ['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws'];

export const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] as const;
const INDEX_TYPES = new Set<string>([OCI_INDEX, DOCKER_MANIFEST_LIST]);

/** What a client's Accept header allows, reduced to the manifest types a mirror can hand out. */
export interface AcceptSet {
  /** Known manifest types the client listed (wildcards expanded). */
  readonly types: ReadonlySet<string>;
  /** A stable cache key: tag answers are cached per Accept class, never shared across classes. */
  readonly key: string;
  /** The header value to forward upstream. */
  readonly header: string;
}

/** The header podman, containerd and skopeo effectively send when they send none we understand. */
const DEFAULT_ACCEPT = [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX];

export function parseAccept(headerValue: string | undefined): AcceptSet {
  const listed = (headerValue ?? '')
    .split(',')
    .map((part) => part.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
  const types = new Set<string>();
  for (const type of listed) {
    if (type === '*/*' || type === 'application/*') DEFAULT_ACCEPT.forEach((t) => types.add(t));
    else if ((MANIFEST_TYPES as readonly string[]).includes(type)) types.add(type);
  }
  // distribution answers a client without a usable Accept with a Docker schema2 manifest.
  const empty = types.size === 0;
  if (empty) types.add(DOCKER_MANIFEST);
  const key = MANIFEST_TYPES.map((t) => (types.has(t) ? '1' : '0')).join('');
  const header = empty ? DOCKER_MANIFEST : MANIFEST_TYPES.filter((t) => types.has(t)).join(', ');
  return { types, key, header };
}

export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function isSchema1(mediaType: string): boolean {
  return DOCKER_SCHEMA1.includes(mediaType);
}

export function isManifestType(mediaType: string): boolean {
  return (MANIFEST_TYPES as readonly string[]).includes(mediaType);
}

/** Strips parameters: Content-Type must equal the manifest's media type. */
export function bareMediaType(contentType: string | undefined | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}
