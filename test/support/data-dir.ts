// What a mirror's data dir holds, read from the directory tree itself (not through the mirror).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuiltImage } from './images.ts';

/** The digests whose bytes are in the mirror's data dir. */
export async function digestsOnDisk(dataDir: string): Promise<Set<string>> {
  const digests = new Set<string>();
  const root = join(dataDir, 'blobs', 'sha256');
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix))) digests.add(`sha256:${hex}`);
  }
  return digests;
}

/** Every digest of a built single-platform image: manifest, config, layers. */
export function imageDigests(image: BuiltImage): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}
