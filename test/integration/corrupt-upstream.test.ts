// An upstream that flips a byte in a blob: the client gets a broken transfer (never a complete wrong
// body), nothing is cached, and the next pull from a healthy upstream works. The flipping proxy is a
// scripted fault a real registry cannot produce; the content behind it comes from a real registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import type { RunningMirror } from '../support/mirror.ts';
import { startStack, type Stack } from '../support/stack.ts';

describe('corrupt bytes from upstream', () => {
  let stack: Stack;
  let work: string;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    stack = await startStack({
      name: 'corrupt-test',
      faultProxy: true,
      seed: async (dir, registry) => {
        image = await buildImage(join(dir, 'img'), { tag: 'v1', layers: [{ randomBytes: 3 * 1024 * 1024, seed: 'corrupt' }] });
        await pushImage(image, registry, 'library/app:v1');
      },
    });
    ({ work, proxy, mirror } = stack as Stack & { proxy: FaultProxy });
  }, 300_000);

  afterAll(async () => {
    await stack?.dispose();
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
