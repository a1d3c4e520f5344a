// A small cache.maxSize: least recently used blobs are evicted to stay under budget, never one that a
// client is still reading, and manifests referencing evicted blobs keep working (refetched on demand).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import type { RunningMirror } from '../support/mirror.ts';
import { startStack, type Stack } from '../support/stack.ts';

// Layers larger than loopback socket buffers: a stalled client really keeps the mirror's read open.
const LAYER = 16 * 1024 * 1024;
const MAX = 40 * 1024 * 1024;

describe('disk budget', () => {
  let stack: Stack;
  let work: string;
  let mirror: RunningMirror;
  const images: BuiltImage[] = [];

  beforeAll(async () => {
    stack = await startStack({
      name: 'budget-test',
      mirror: { cache: { maxSize: MAX, lowWater: 0.9 } },
      seed: async (dir, registry) => {
        for (let i = 0; i < 6; i++) {
          const image = await buildImage(join(dir, `img${i}`), { tag: 'v1', layers: [{ randomBytes: LAYER, seed: `budget-${i}` }] });
          await pushImage(image, registry, `library/app${i}:v1`);
          images.push(image);
        }
      },
    });
    ({ work, mirror } = stack);
  }, 300_000);

  afterAll(async () => {
    await stack?.dispose();
  });

  const blobUrl = (i: number) => `${mirror.url}/v2/library/app${i}/blobs/${images[i]!.layers[0]!.digest}`;
  const held = async (i: number) => (await mirror.runtime.deps.blobs.stat(images[i]!.layers[0]!.digest)) !== undefined;
  const onDisk = async () => {
    let bytes = 0;
    for await (const blob of mirror.runtime.deps.blobs.list()) bytes += blob.size;
    return bytes;
  };

  it('stays under maxSize and never evicts a blob a client is still reading', async () => {
    await (await fetch(blobUrl(0))).arrayBuffer();
    // A client that started reading blob 0 and stalls: the blob is in use until it lets go.
    const slow = await fetch(blobUrl(0));
    const reader = slow.body!.getReader();
    await reader.read();
    for (let i = 1; i < 6; i++) {
      await (await fetch(blobUrl(i))).arrayBuffer();
      await sleep(5);
      await mirror.runtime.deps.budget.settled();
    }
    expect(await onDisk()).toBeLessThanOrEqual(MAX);
    expect(await held(0)).toBe(true);
    expect(await held(5)).toBe(true);
    expect(await held(1)).toBe(false);
    await reader.cancel();
    const metrics = await (await fetch(`${mirror.url}/metrics`)).text();
    expect(metrics).toMatch(/ocimirror_evictions_total [1-9]/);
    expect(metrics).toMatch(/ocimirror_blob_store_size_bytes \d+/);
  }, 120_000);

  it('pulls an image whose layer was evicted by fetching it again', async () => {
    expect(await held(1)).toBe(false);
    await skopeoCopy(`docker://${mirror.host}/library/app1:v1`, `oci:${join(work, 'again')}:x`);
    const body = Buffer.from(await (await fetch(blobUrl(1))).arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(images[1]!.layers[0]!.digest);
    await mirror.runtime.deps.budget.settled();
    expect(await onDisk()).toBeLessThanOrEqual(MAX);
  }, 120_000);
});
