// An upstream that flips a byte in a blob: the client gets a broken transfer (never a complete wrong
// body), nothing is cached, and the next pull from a healthy upstream works. The flipping proxy is a
// scripted fault a real registry cannot produce; the content behind it comes from a real registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

describe('corrupt bytes from upstream', () => {
  let work: string;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('corrupt-test');
    registry = await startRegistry();
    image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 3 * 1024 * 1024, seed: 'corrupt' }] });
    await pushImage(image, registry, 'library/app:v1');
    proxy = await startFaultProxy(registry.url);
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] });
  }, 300_000);

  afterAll(async () => {
    await mirror?.dispose();
    await proxy?.stop();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  const layer = () => image.layers[0]!;
  const blobUrl = () => `${mirror.url}/v2/library/app/blobs/${layer().digest}`;

  it('breaks the client connection instead of completing a corrupt body, and caches nothing', async () => {
    proxy.setFault('flip-byte');
    const res = await fetch(blobUrl());
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    await expect(skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'bad')}:x`)).rejects.toThrow();
    expect(await mirror.runtime.deps.blobs.stat(layer().digest)).toBeUndefined();
    const uploads = await readdir(join(mirror.config.dataDir, 'blobs', '_uploads'));
    expect(uploads).toEqual([]);
    expect(mirror.logText()).toContain('blob download failed; nothing cached');
  }, 60_000);

  it('pulls correctly once the upstream is healthy again', async () => {
    proxy.setFault('none');
    const res = await fetch(blobUrl());
    const body = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(layer().digest);
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'good')}:x`);
    expect((await mirror.runtime.deps.blobs.stat(layer().digest))?.size).toBe(layer().size);
  }, 60_000);
});
