// Image references as operators type them (docker, podman, skopeo, crictl):
//   [registry/]repository[:tag][@digest]   e.g. alpine:3.20, ghcr.io/org/app:v1, pause@sha256:...
// Pure: which upstream a reference without a registry means is the mirror table's business, not ours.
import { parseDigest } from './digest.ts';
import { isTag, isValidName } from './reference.ts';

export interface ImageRef {
  /** The registry host as written (lower-cased, with port if given); undefined when the reference names none. */
  readonly registry: string | undefined;
  /** The repository path, exactly as written (no `library/` added: that is the upstream's rule). */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export class ImageRefError extends Error {
  override readonly name = 'ImageRefError';
}

/** host, host:port or [v6]:port; upper case is allowed (docker treats an upper-case first component as a host). */
const HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** Splits `name[:tag][@digest]`; the tag's colon is the last one after the last slash (a port's colon is not). */
export function splitReference(text: string): { name: string; tag: string | undefined; digest: string | undefined } {
  const at = text.indexOf('@');
  const digest = at >= 0 ? text.slice(at + 1) : undefined;
  const rest = at >= 0 ? text.slice(0, at) : text;
  const colon = rest.lastIndexOf(':');
  const tagged = colon > rest.lastIndexOf('/');
  return { name: tagged ? rest.slice(0, colon) : rest, tag: tagged ? rest.slice(colon + 1) : undefined, digest };
}

export function parseImageRef(input: string): ImageRef {
  const text = input.trim().replace(/^docker:\/\//, '');
  if (!text) throw new ImageRefError('empty image reference');
  const { name, tag, digest } = splitReference(text);
  if (tag !== undefined && !isTag(tag)) throw new ImageRefError(`"${input}": "${tag}" is not a valid tag`);
  if (digest !== undefined) {
    try {
      parseDigest(digest);
    } catch (err) {
      throw new ImageRefError(`"${input}": ${(err as Error).message}`);
    }
  }
  // docker's rule: the first component is a registry when it has a dot or a colon, is "localhost", or has
  // upper case (repositories cannot), and something follows it.
  const slash = name.indexOf('/');
  const first = slash > 0 ? name.slice(0, slash) : '';
  const hasRegistry = first !== '' && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  const registry = hasRegistry ? first.toLowerCase() : undefined;
  const repository = hasRegistry ? name.slice(slash + 1) : name;
  if (registry !== undefined && !HOST.test(registry)) throw new ImageRefError(`"${input}": "${first}" is not a registry host`);
  if (!isValidName(repository)) {
    throw new ImageRefError(`"${input}": "${repository}" is not a repository name (lower-case letters, digits, separators . _ __ -, components joined by /)`);
  }
  return { registry, repository, tag, digest };
}

/** What to pull: the digest when given, else the tag, else `latest`. */
export function referenceOf(ref: ImageRef): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.registry ? `${ref.registry}/` : ''}${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
