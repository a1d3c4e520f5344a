import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { commitBlob, OCI_LAYER_GZIP, OCI_LAYER_TAR, stagingPath, type Descriptor } from './oci-layout.ts';
import { seededBytes } from './seeded-bytes.ts';
import { tarEnd, tarHeader, tarPadding } from './tar-writer.ts';

export interface LayerSpec {
  /** Files by path inside the layer (no leading slash), with their text content. */
  files?: Record<string, string>;
  /** Adds random-<n>.bin with this many incompressible bytes derived from `seed`. */
  randomBytes?: number;
  /** Makes the layer's random content (and so its digest) reproducible; defaults per image. */
  seed?: string;
  /** gzip the layer (default true; OCI -> Docker schema 2 conversion needs gzip). */
  compress?: boolean;
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids. */
  diffId: string;
}

/**
 * Streams one layer tarball into the layout's blob store. Large random
 * layers are stored with gzip level 0 (valid gzip, no CPU spent on data
 * that cannot shrink), so 100 MB layers take well under a few seconds.
 */
export async function writeLayer(layoutDir: string, spec: LayerSpec, index: number, seed: string): Promise<BuiltLayer> {
  const compress = spec.compress ?? true;
  const randomBytes = spec.randomBytes ?? 0;
  const staged = stagingPath(layoutDir);
  const diff = createHash('sha256');
  const stored = createHash('sha256');
  let size = 0;
  const compressor = compress ? createGzip({ level: randomBytes >= 1024 * 1024 ? 0 : 6 }) : new PassThrough();
  await pipeline(
    Readable.from(tarStream(spec.files ?? {}, randomBytes, `random-${index}.bin`, seed)),
    hashing(diff),
    compressor,
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        stored.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(staged),
  );
  const digest = `sha256:${stored.digest('hex')}`;
  await commitBlob(layoutDir, staged, digest);
  return {
    mediaType: compress ? OCI_LAYER_GZIP : OCI_LAYER_TAR,
    digest,
    size,
    diffId: `sha256:${diff.digest('hex')}`,
  };
}

function hashing(hash: Hash) {
  return async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  };
}

async function* tarStream(
  files: Record<string, string>,
  randomBytes: number,
  randomName: string,
  seed: string,
): AsyncGenerator<Buffer> {
  const paths = Object.keys(files).map((path) => path.replace(/^\/+/, ''));
  for (const dir of parentDirectories([...paths, ...(randomBytes > 0 ? [randomName] : [])])) {
    yield tarHeader({ path: dir, type: 'directory', size: 0 });
  }
  for (const [path, text] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const body = Buffer.from(text);
    yield tarHeader({ path: path.replace(/^\/+/, ''), type: 'file', size: body.length });
    yield body;
    yield tarPadding(body.length);
  }
  if (randomBytes > 0) {
    yield tarHeader({ path: randomName, type: 'file', size: randomBytes });
    yield* seededBytes(seed, randomBytes);
    yield tarPadding(randomBytes);
  }
  yield tarEnd();
}

/** Every ancestor directory of the given paths, parents before children. */
function parentDirectories(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}
