// Layer prefetch: a client's GET of an image manifest that the mirror fetched from upstream starts
// downloading the image's config and layers before the client asks for them; the client's blob GETs then
// join those downloads (one upstream GET per blob). containerd's HEAD-by-tag then GET-by-digest starts it
// too; a HEAD alone, an index, and an upstream with `prefetch: false` do not. A client that never asks
// for the blobs shows up as prefetched but never requested.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, buildIndex, pushImage, type BuiltImage, type BuiltIndex } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startMirrorProcess } from '../support/mirror-process.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { startStack, type Stack } from '../support/stack.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const UNUSED_AFTER_MS = 2_000;

describe('layer prefetch', () => {
  let stack: Stack;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let mirror: RunningMirror;
  const images = new Map<string, BuiltImage>();
  let index: BuiltIndex;

  beforeAll(async () => {
    stack = await startStack({
      name: 'prefetch-test',
      faultProxy: true,
      seed: async (work, reg) => {
        const specs: Record<string, number> = { get: 3, joined: 3, containerd: 2, head: 2, inspect: 3, off: 2, narrow: 6 };
        for (const [name, layers] of Object.entries(specs)) {
          const image = await buildImage(join(work, name), {
            tag: 'v1',
            layers: Array.from({ length: layers }, (_, i) => ({ randomBytes: name === 'narrow' || name === 'joined' ? 512 * 1024 : 16 * 1024, seed: `prefetch-${name}-${i}` })),
          });
          await pushImage(image, reg, `library/${name}:v1`);
          images.set(name, image);
        }
        index = await buildIndex(join(work, 'multi'), {
          tag: '1',
          platforms: [
            { os: 'linux', architecture: 'amd64', layers: [{ randomBytes: 16 * 1024, seed: 'prefetch-multi-amd64' }] },
            { os: 'linux', architecture: 'arm64', layers: [{ randomBytes: 16 * 1024, seed: 'prefetch-multi-arm64' }] },
          ],
        });
        await pushImage(index, reg, 'library/multi:1', { all: true });
      },
    });
    ({ registry, mirror } = stack);
    proxy = stack.proxy!;
    // The same upstream under other names, each with its own prefetch settings (the stack's own mirror
    // cannot name the fault proxy it starts).
    await mirror.stop();
    mirror = await startMirror({
      upstreams: [
        { name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true },
        { name: 'idle', url: proxy.url, aliases: ['idle.example'] },
        { name: 'off', url: proxy.url, aliases: ['off.example'], prefetch: false },
        { name: 'narrow', url: proxy.url, aliases: ['narrow.example'], prefetchConcurrency: 2 },
      ],
      cache: { prefetchUnusedAfter: `${UNUSED_AFTER_MS}ms` },
    });
  }, 300_000);

  afterAll(async () => {
    await mirror?.dispose();
    await stack?.dispose();
  });

  beforeEach(() => {
    proxy.setFault('none');
  });

  const blobsOf = (image: BuiltImage) => [image.configDigest, ...image.layers.map((l) => l.digest)];
  const upstreamBlobGets = (digests: readonly string[]) => registry.requests().filter((r) => r.method === 'GET' && digests.some((d) => r.path.endsWith(`/blobs/${d}`)));
  const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  async function metric(name: string, upstream: string): Promise<number> {
    const text = await (await fetch(`${mirror.url}/metrics`)).text();
    const match = new RegExp(`^${name}\\{upstream="${upstream}"\\} (\\d+)$`, 'm').exec(text);
    return Number(match?.[1] ?? 0);
  }

  async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(25);
    }
  }

  /** Waits until the upstream answered a GET for each of `digests` and the mirror stored them. */
  async function fetchedUpstream(digests: readonly string[]): Promise<void> {
    await until(async () => {
      await registry.settle();
      return digests.every((d) => upstreamBlobGets([d]).length > 0);
    }, 'the prefetched blobs to arrive upstream');
    await until(async () => (await Promise.all(digests.map((d) => mirror.runtime.deps.blobs.stat(d)))).every(Boolean), 'the prefetched blobs to be stored');
  }

  const manifest = (path: string, method = 'GET', accept = OCI_MANIFEST) => fetch(`${mirror.url}/v2/${path}`, { method, headers: { accept } });

  it('downloads the config and every layer after a manifest GET, without the client asking', async () => {
    const image = images.get('get')!;
    const res = await manifest('library/get/manifests/v1');
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    await fetchedUpstream(blobsOf(image));
    // Counted once each download started (its upstream answer arrived a moment before).
    await until(async () => (await metric('ocimirror_prefetch_started_total', 'docker.io')) === blobsOf(image).length, 'the started count');
    await mirror.runtime.idle();
    // The client's blob GETs are answered from the disk: one upstream GET per blob in all. The first
    // request of each still says miss (its bytes came from the upstream for this pull: a cold pull does
    // not count as cache hits); the next one is a hit.
    for (const expected of ['miss', 'hit']) {
      for (const digest of blobsOf(image)) {
        const blob = await fetch(`${mirror.url}/v2/library/get/blobs/${digest}`);
        expect(blob.status).toBe(200);
        expect(blob.headers.get('x-ocimirror-cache')).toBe(expected);
        expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(digest);
      }
    }
    await registry.settle();
    expect(upstreamBlobGets(blobsOf(image))).toHaveLength(blobsOf(image).length);
  });

  it('lets the client’s blob GETs join the downloads under way: no second upstream GET', async () => {
    const image = images.get('joined')!;
    proxy.setFault({ dripBytesPerSec: 1024 * 1024 });
    expect((await manifest('library/joined/manifests/v1')).status).toBe(200);
    await until(() => image.layers.every((l) => mirror.runtime.deps.downloads.has(l.digest)), 'the prefetch downloads to start');
    const bodies = await Promise.all(
      blobsOf(image).map(async (digest) => {
        const blob = await fetch(`${mirror.url}/v2/library/joined/blobs/${digest}`);
        expect(blob.status).toBe(200);
        return new Uint8Array(await blob.arrayBuffer());
      }),
    );
    expect(bodies.map(sha256)).toEqual(blobsOf(image));
    await mirror.runtime.idle();
    await registry.settle();
    for (const digest of blobsOf(image)) expect(upstreamBlobGets([digest])).toHaveLength(1);
    // They were asked for: none counts as never requested.
    await sleep(UNUSED_AFTER_MS + 1_000);
    expect(await metric('ocimirror_prefetch_never_requested_total', 'docker.io')).toBe(0);
  });

  it('starts on containerd’s HEAD by tag and GET by digest, not on a HEAD alone', async () => {
    const headOnly = images.get('head')!;
    const head = await manifest('library/head/manifests/v1', 'HEAD');
    expect(head.status).toBe(200);
    await sleep(500);
    await registry.settle();
    expect(upstreamBlobGets(blobsOf(headOnly))).toEqual([]);

    const image = images.get('containerd')!;
    const tagHead = await manifest('library/containerd/manifests/v1', 'HEAD');
    expect(tagHead.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    await registry.settle();
    const manifestGets = registry.requests().filter((r) => r.method === 'GET' && r.path.includes('/library/containerd/manifests/')).length;
    const byDigest = await manifest(`library/containerd/manifests/${image.manifestDigest}`);
    expect(byDigest.status).toBe(200);
    expect(byDigest.headers.get('x-ocimirror-cache')).toBe('hit');
    await fetchedUpstream(blobsOf(image));
    // The GET by digest was answered from the cache the HEAD filled.
    expect(registry.requests().filter((r) => r.method === 'GET' && r.path.includes('/library/containerd/manifests/')).length).toBe(manifestGets);
    await mirror.runtime.idle();
    for (const expected of ['miss', 'hit'])
      for (const digest of blobsOf(image)) expect((await fetch(`${mirror.url}/v2/library/containerd/blobs/${digest}`)).headers.get('x-ocimirror-cache')).toBe(expected);
  });

  it('does not prefetch for an index; the platform manifest fetched next does', async () => {
    const res = await manifest('library/multi/manifests/1', 'GET', `${OCI_INDEX}, ${OCI_MANIFEST}`);
    expect(res.headers.get('content-type')).toBe(OCI_INDEX);
    const amd64 = index.manifests.find((m) => m.platform.architecture === 'amd64')!;
    const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')!;
    expect((await manifest(`library/multi/manifests/${amd64.manifestDigest}`)).status).toBe(200);
    await fetchedUpstream([amd64.configDigest, ...amd64.layers.map((l) => l.digest)]);
    await mirror.runtime.idle();
    await registry.settle();
    expect(upstreamBlobGets([arm64.configDigest, ...arm64.layers.map((l) => l.digest)])).toEqual([]);
    for (const digest of [amd64.configDigest, ...amd64.layers.map((l) => l.digest)]) await fetch(`${mirror.url}/v2/library/multi/blobs/${digest}`).then((r) => r.arrayBuffer());
  });

  it('counts what a manifest-only client (skopeo inspect) made it download as prefetched but never requested', async () => {
    const image = images.get('inspect')!;
    expect((await manifest('idle.example/library/inspect/manifests/v1')).status).toBe(200);
    await fetchedUpstream(blobsOf(image));
    expect(await metric('ocimirror_prefetch_started_total', 'idle')).toBe(blobsOf(image).length);
    expect(await metric('ocimirror_prefetch_never_requested_total', 'idle')).toBe(0);
    await until(async () => (await metric('ocimirror_prefetch_never_requested_total', 'idle')) === blobsOf(image).length, 'the never-requested count', UNUSED_AFTER_MS + 15_000);
  });

  it('is off for an upstream with prefetch: false', async () => {
    const image = images.get('off')!;
    expect((await manifest('off.example/library/off/manifests/v1')).status).toBe(200);
    await sleep(500);
    await mirror.runtime.idle();
    await registry.settle();
    expect(upstreamBlobGets(blobsOf(image))).toEqual([]);
    expect(await metric('ocimirror_prefetch_started_total', 'off')).toBe(0);
  });

  it('runs at most prefetchConcurrency downloads from one upstream at once', async () => {
    const image = images.get('narrow')!;
    proxy.setFault({ dripBytesPerSec: 2 * 1024 * 1024 });
    const mine = new Set(blobsOf(image));
    let most = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        most = Math.max(most, [...mirror.runtime.deps.downloads.keys()].filter((d) => mine.has(d)).length);
        await sleep(5);
      }
    })();
    expect((await manifest('narrow.example/library/narrow/manifests/v1')).status).toBe(200);
    await fetchedUpstream(blobsOf(image));
    await mirror.runtime.idle();
    polling = false;
    await poll;
    expect(most).toBe(2);
    await registry.settle();
    for (const digest of blobsOf(image)) expect(upstreamBlobGets([digest])).toHaveLength(1);
  });

  it('ends the prefetch downloads no client asked for on SIGTERM, instead of waiting for them', async () => {
    // The mirror as `serve` runs it, with a long grace; every prefetch download would take ~16 s.
    proxy.setFault({ dripBytesPerSec: 32 * 1024 });
    const served = await startMirrorProcess({ dataDir: join(stack.work, 'sigterm-data'), shutdownGrace: '60s', upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] });
    const res = await fetch(`${served.url}/v2/library/narrow/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    await sleep(500); // the downloads are under way, far from done
    const stopping = Date.now();
    expect(await served.terminate(60_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopping).toBeLessThan(8_000);
    const logs = served.logs();
    expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
    // The layers were broken off (the small config may have arrived in time).
    const layers = new Set(images.get('narrow')!.layers.map((l) => l.digest));
    expect(logs.filter((l) => l.msg === 'blob cached' && layers.has(l.digest as string))).toEqual([]);
  }, 60_000);
});
