// Many clients, one cold blob: one upstream request; every client streams it as it arrives, joins at
// any point, may disconnect without hurting the others; ranges are served from the growing file.
// The fault proxy here only slows the upstream down (a drip) so that clients overlap; the content
// comes from a real registry.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import type { RunningMirror } from '../support/mirror.ts';
import { startStack, type Stack } from '../support/stack.ts';

const LAYER_BYTES = 8 * 1024 * 1024;

describe('concurrent clients on cold blobs', () => {
  let stack: Stack;
  let proxy: FaultProxy;
  let mirror: RunningMirror;
  const images: BuiltImage[] = [];
  let next = 0;

  beforeAll(async () => {
    stack = await startStack({
      name: 'coalescing-test',
      faultProxy: true,
      // Client requests coalescing is what is tested here: no layer prefetch starting downloads of its own.
      upstream: { prefetch: false },
      seed: async (work, registry) => {
        for (let i = 0; i < 6; i++) {
          const image = await buildImage(join(work, `img${i}`), { tag: 'v1', layers: [{ randomBytes: LAYER_BYTES, seed: `coalesce-${i}` }] });
          await pushImage(image, registry, `library/app${i}:v1`);
          images.push(image);
        }
      },
    });
    ({ proxy, mirror } = stack as Stack & { proxy: FaultProxy });
  }, 300_000);

  afterAll(async () => {
    await stack?.dispose();
  });

  beforeEach(() => {
    proxy.setFault('none');
    proxy.clearRequests();
  });

  /** A fresh cold blob for each test. */
  function coldBlob(): { url: string; digest: string; size: number } {
    const i = next++;
    const layer = images[i]!.layers[0]!;
    return { url: `${mirror.url}/v2/library/app${i}/blobs/${layer.digest}`, digest: layer.digest, size: layer.size };
  }

  const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const upstreamBlobGets = () => proxy.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
  const fetchAll = async (url: string, init?: RequestInit) => new Uint8Array(await (await fetch(url, init)).arrayBuffer());

  it('makes one upstream request for 20 simultaneous clients, and all get the right bytes', async () => {
    const blob = coldBlob();
    proxy.setFault({ dripBytesPerSec: 16 * 1024 * 1024 });
    const bodies = await Promise.all(Array.from({ length: 20 }, () => fetchAll(blob.url)));
    for (const body of bodies) expect(sha256(body)).toBe(blob.digest);
    expect(upstreamBlobGets()).toBe(1);
    expect((await mirror.runtime.deps.blobs.stat(blob.digest))?.size).toBe(blob.size);
  }, 60_000);

  it('gives a client that joins halfway the whole blob, from the same download', async () => {
    const blob = coldBlob();
    proxy.setFault({ dripBytesPerSec: 8 * 1024 * 1024 });
    const first = fetchAll(blob.url);
    while ((mirror.runtime.deps.downloads.get(blob.digest)?.written ?? 0) < blob.size / 2) await sleep(20);
    const late = await fetchAll(blob.url);
    expect(sha256(late)).toBe(blob.digest);
    expect(sha256(await first)).toBe(blob.digest);
    expect(upstreamBlobGets()).toBe(1);
  }, 60_000);

  it('keeps the download and the other clients going when the first client disconnects', async () => {
    const blob = coldBlob();
    proxy.setFault({ dripBytesPerSec: 8 * 1024 * 1024 });
    const abort = new AbortController();
    const quitter = fetch(blob.url, { signal: abort.signal }).then(async (res) => {
      const reader = res.body!.getReader();
      await reader.read();
      abort.abort();
    });
    const stayer = fetchAll(blob.url);
    await quitter.catch(() => {});
    expect(sha256(await stayer)).toBe(blob.digest);
    expect(upstreamBlobGets()).toBe(1);
    expect((await mirror.runtime.deps.blobs.stat(blob.digest))?.size).toBe(blob.size);
  }, 60_000);

  it('serves byte ranges of a blob still downloading, without a second download', async () => {
    const blob = coldBlob();
    proxy.setFault({ dripBytesPerSec: 8 * 1024 * 1024 });
    const whole = fetchAll(blob.url);
    const start = blob.size - 1000;
    const res = await fetch(blob.url, { headers: { range: `bytes=${start}-` } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${blob.size - 1}/${blob.size}`);
    const tail = new Uint8Array(await res.arrayBuffer());
    const full = await whole;
    expect(sha256(full)).toBe(blob.digest);
    expect(Buffer.from(tail).equals(Buffer.from(full.subarray(start)))).toBe(true);
    expect(upstreamBlobGets()).toBe(1);
  }, 60_000);

  it('asks the upstream once for a cold tag that 20 clients want at the same moment', async () => {
    const i = next++;
    proxy.setFault({ dripBytesPerSec: 64 * 1024 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${mirror.url}/v2/library/app${i}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })),
    );
    for (const res of answers) expect(res.headers.get('docker-content-digest')).toBe(images[i]!.manifestDigest);
    expect(proxy.requests().filter((r) => r.path.includes('/manifests/'))).toHaveLength(1);
  }, 60_000);

  it('answers HEAD of a cached blob with its size, and of a cold one without downloading it', async () => {
    const blob = coldBlob();
    const cold = await fetch(blob.url, { method: 'HEAD' });
    expect(cold.headers.get('content-length')).toBe(String(blob.size));
    expect(upstreamBlobGets()).toBe(0);
    expect(mirror.runtime.deps.downloads.size).toBe(0);
    await fetchAll(blob.url);
    const cached = await fetch(blob.url, { method: 'HEAD' });
    expect(cached.status).toBe(200);
    expect(cached.headers.get('content-length')).toBe(String(blob.size));
  }, 60_000);
});
