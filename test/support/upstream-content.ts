// The images integration tests pull: built here as OCI layouts, pushed to a real registry with skopeo.
import { join } from 'node:path';
import { buildImage, buildIndex, pushImage, type BuiltImage, type BuiltIndex } from './images.ts';
import type { RunningRegistry } from './registry.ts';

export interface SeededContent {
  /** library/alpine:3.8 — a 3-layer single-arch OCI image. */
  readonly alpine: BuiltImage;
  /** library/multi:1 — an OCI index with linux/amd64 and linux/arm64. */
  readonly multi: BuiltIndex;
  /** library/docker2:1 — the alpine image converted to Docker schema 2 by skopeo. */
  readonly dockerRepo: string;
  /** big/layer:1 — an image with one >= 100 MB layer (only when asked for). */
  readonly big?: BuiltImage;
}

export async function buildAndPush(registry: RunningRegistry, workDir: string, options: { big?: boolean } = {}): Promise<SeededContent> {
  const alpine = await buildImage(join(workDir, 'alpine'), {
    tag: '3.8',
    layers: [{ files: { 'etc/os-release': 'ID=test\n' } }, { randomBytes: 64 * 1024, seed: 'alpine-2' }, { files: { 'bin/hello': 'echo hi\n' } }],
  });
  await pushImage(alpine, registry, 'library/alpine:3.8');
  await pushImage(alpine, registry, 'library/docker2:1', { format: 'v2s2' });
  const multi = await buildIndex(join(workDir, 'multi'), {
    tag: '1',
    platforms: [
      { os: 'linux', architecture: 'amd64', layers: [{ randomBytes: 32 * 1024, seed: 'multi-amd64' }] },
      { os: 'linux', architecture: 'arm64', layers: [{ randomBytes: 32 * 1024, seed: 'multi-arm64' }] },
    ],
  });
  await pushImage(multi, registry, 'library/multi:1', { all: true });
  let big: BuiltImage | undefined;
  if (options.big) {
    big = await buildImage(join(workDir, 'big'), { tag: '1', layers: [{ randomBytes: 100 * 1024 * 1024 + 7, seed: 'big-layer' }, { files: { 'x': 'y' } }] });
    await pushImage(big, registry, 'big/layer:1', { timeoutMs: 300_000 });
  }
  return { alpine, multi, dockerRepo: 'library/docker2', ...(big ? { big } : {}) };
}

/** Requests for blob bodies (GET, not HEAD) that the registry answered. */
export function blobGets(registry: RunningRegistry): number {
  return registry.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
}
