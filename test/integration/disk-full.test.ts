// The data dir's filesystem fills up mid-download: the client gets a broken transfer, nothing partial
// stays behind, and what was cached before keeps being served. A real full filesystem: a 6 MiB tmpfs
// (mounting needs root, as CI and the developers' machines run).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../support/command.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

describe('disk full', () => {
  let work: string;
  let mountPoint: string;
  let registry: RunningRegistry;
  let small: BuiltImage;
  let big: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('disk-full-test');
    mountPoint = join(work, 'small-disk');
    await mkdir(mountPoint);
    await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint]).catch((err: Error) => {
      throw new Error(`this test mounts a 6 MiB tmpfs and must run as root: ${err.message}`);
    });
    registry = await startRegistry();
    small = await buildImage(join(work, 'small'), { tag: 'v1', layers: [{ randomBytes: 200_000, seed: 'small' }] });
    big = await buildImage(join(work, 'big'), { tag: 'v1', layers: [{ randomBytes: 8 * 1024 * 1024, seed: 'big' }] });
    await pushImage(small, registry, 'library/small:v1');
    await pushImage(big, registry, 'library/big:v1');
    mirror = await startMirror({ dataDir: join(mountPoint, 'data'), upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  }, 120_000);

  afterAll(async () => {
    await mirror?.dispose();
    await registry?.dispose();
    if (mountPoint) await runCommand('umount', [mountPoint]).catch(() => {});
    if (work) await removeTempDir(work);
  });

  const sha256 = (bytes: ArrayBuffer) => `sha256:${createHash('sha256').update(Buffer.from(bytes)).digest('hex')}`;
  const blobUrl = (repo: string, image: BuiltImage) => `${mirror.url}/v2/library/${repo}/blobs/${image.layers[0]!.digest}`;

  it('breaks the transfer, leaves nothing partial, and keeps serving what is cached', async () => {
    expect(sha256(await (await fetch(blobUrl('small', small))).arrayBuffer())).toBe(small.layers[0]!.digest);

    const res = await fetch(blobUrl('big', big));
    await expect(res.arrayBuffer()).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await mirror.runtime.deps.blobs.stat(big.layers[0]!.digest)).toBeUndefined();
    expect(await readdir(join(mountPoint, 'data', 'blobs', '_uploads'))).toEqual([]);

    expect(sha256(await (await fetch(blobUrl('small', small))).arrayBuffer())).toBe(small.layers[0]!.digest);
    expect((await fetch(`${mirror.url}/v2/`)).status).toBe(200);
  }, 60_000);
});
