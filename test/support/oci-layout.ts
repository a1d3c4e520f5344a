import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// Writing an OCI image layout (image-spec v1.0 image-layout.md): blobs under
// blobs/sha256/<hex>, an oci-layout marker, and index.json naming tagged
// entries with the org.opencontainers.image.ref.name annotation.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export async function ensureLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

export function blobPath(dir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (algorithm === undefined || hex === undefined) throw new Error(`not a digest: ${digest}`);
  return join(dir, 'blobs', algorithm, hex);
}

/** A path in the layout's blob directory to stream a blob into before its digest is known. */
export function stagingPath(dir: string): string {
  return join(dir, 'blobs', 'sha256', `.staging-${randomUUID()}`);
}

/** Moves a staged blob to its content address. */
export async function commitBlob(dir: string, staged: string, digest: string): Promise<void> {
  await rename(staged, blobPath(dir, digest)).catch(async (error: unknown) => {
    await rm(staged, { force: true });
    throw error;
  });
}

/** Stores a JSON document as a blob; returns its descriptor. */
export async function writeJsonBlob(dir: string, mediaType: string, document: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(dir, digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Points `tag` at `descriptor` in index.json, replacing an earlier entry of that tag. */
export async function tagInLayout(dir: string, descriptor: Descriptor, tag: string): Promise<void> {
  const path = join(dir, 'index.json');
  const index = await readFile(path, 'utf8').then(
    (text) => JSON.parse(text) as { manifests: Descriptor[] },
    () => ({ manifests: [] as Descriptor[] }),
  );
  const manifests = index.manifests.filter((entry) => entry.annotations?.[REF_NAME] !== tag);
  manifests.push({ ...descriptor, annotations: { [REF_NAME]: tag } });
  await writeFile(path, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}
