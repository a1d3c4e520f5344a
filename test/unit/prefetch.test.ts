// The Prefetcher's rules, in-process with a download function of the test's own: what starts a prefetch
// (a GET that fetched the manifest, or the GET by digest after a HEAD that did), the per-upstream bound,
// the disk budget, never-requested counting, and stop() breaking off what no client asked for.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { CachedManifest } from '../../src/mirror/deps.ts';
import type { InflightBlob } from '../../src/mirror/inflight-blob.ts';
import { Prefetcher, type PrefetcherOptions } from '../../src/mirror/prefetch.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import type { Routed } from '../../src/upstream/route.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function manifestWith(layers: number, size = 100): CachedManifest {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(1000 + layers), size },
    layers: Array.from({ length: layers }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layers * 100 + i), size })),
  };
  const body = Buffer.from(JSON.stringify(doc));
  return { digest: digestOf(layers * 7 + 1), record: { mediaType: OCI_MANIFEST, size: body.byteLength, references: [] }, body };
}

/** A download the test ends by hand. */
class FakeDownload {
  cancelled = false;
  readonly digest: string;
  readonly finished: Promise<void>;
  end!: () => void;
  constructor(digest: string) {
    this.digest = digest;
    this.finished = new Promise((resolve) => (this.end = resolve));
  }
  cancel(): void {
    this.cancelled = true;
    this.end();
  }
}

const running: Prefetcher[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.stop();
});

function setUp(upstream: { prefetch?: boolean; prefetchConcurrency?: number } = {}, options: Partial<PrefetcherOptions> = {}) {
  const config = parseConfig({ upstreams: [{ name: 'lab', url: 'http://127.0.0.1:5999', ...upstream }], dataDir: '/tmp/unused' }, { env: {} });
  const routed: Routed = { upstream: config.upstreams[0]!, repo: 'library/app', rule: 'default' };
  const metrics = createMetrics('test');
  const started: FakeDownload[] = [];
  let clock = 0;
  const prefetcher = new Prefetcher({
    download: async (_routed, digest) => {
      const d = new FakeDownload(digest);
      started.push(d);
      return d as unknown as InflightBlob;
    },
    cacheBytes: () => 0,
    maxBytes: undefined,
    unusedAfterMs: 1_000,
    metrics,
    logger: createLogger('silent'),
    now: () => clock,
    ...options,
  });
  running.push(prefetcher);
  const counter = async (name: 'prefetchStarted' | 'prefetchNeverRequested') => (await metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
  return { prefetcher, routed, started, metrics, counter, tick: (ms: number) => (clock += ms) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Prefetcher', () => {
  it('starts the config and layers of a manifest a GET fetched; not one answered from the cache', async () => {
    const { prefetcher, routed, started } = setUp();
    prefetcher.manifestServed(routed, manifestWith(3), { head: false, fetched: false });
    await settle();
    expect(started).toHaveLength(0);
    prefetcher.manifestServed(routed, manifestWith(3), { head: false, fetched: true });
    await settle();
    expect(started.map((d) => d.digest)).toEqual([digestOf(1003), digestOf(300), digestOf(301), digestOf(302)]);
  });

  it('arms on a HEAD that fetched the manifest and starts on the GET by digest that follows', async () => {
    const { prefetcher, routed, started } = setUp();
    const manifest = manifestWith(2);
    prefetcher.manifestServed(routed, manifest, { head: true, fetched: true });
    await settle();
    expect(started).toHaveLength(0);
    prefetcher.manifestServed(routed, manifest, { head: false, fetched: false });
    await settle();
    expect(started).toHaveLength(3);
    // Armed once: a later cached GET is another pull of an image already fetched.
    prefetcher.manifestServed(routed, manifest, { head: false, fetched: false });
    await settle();
    expect(started).toHaveLength(3);
  });

  it('ignores indexes and upstreams with prefetch: false', async () => {
    const off = setUp({ prefetch: false });
    off.prefetcher.manifestServed(off.routed, manifestWith(2), { head: false, fetched: true });
    const { prefetcher, routed, started } = setUp();
    const index = { ...manifestWith(2), record: { mediaType: 'application/vnd.oci.image.index.v1+json', size: 1, references: [] } };
    prefetcher.manifestServed(routed, index, { head: false, fetched: true });
    await settle();
    expect(off.started).toHaveLength(0);
    expect(started).toHaveLength(0);
  });

  it('runs at most prefetchConcurrency downloads of one upstream at once', async () => {
    const { prefetcher, routed, started } = setUp({ prefetchConcurrency: 2 });
    prefetcher.manifestServed(routed, manifestWith(5), { head: false, fetched: true });
    await settle();
    expect(started).toHaveLength(2);
    // Each one that ends lets the next start, never more than two under way.
    for (let ended = 0; ended < 6; ended++) {
      started[ended]!.end();
      await settle();
      await settle();
      expect(started).toHaveLength(Math.min(6, ended + 3));
    }
  });

  it('leaves to the clients what would push the cache past cache.maxSize', async () => {
    const { prefetcher, routed, started, metrics } = setUp({}, { cacheBytes: () => 900, maxBytes: 1_000 });
    prefetcher.manifestServed(routed, manifestWith(3, 60), { head: false, fetched: true });
    await settle();
    expect(started).toHaveLength(1); // 900 + 60 fits; a second 60 does not while the first is under way
    expect((await metrics.prefetchSkipped.get()).values.find((v) => v.labels.reason === 'budget')?.value).toBe(3);
  });

  it('counts blobs nobody asked for within unusedAfter as never requested', async () => {
    const { prefetcher, routed, started, counter, tick } = setUp();
    prefetcher.manifestServed(routed, manifestWith(2), { head: false, fetched: true });
    await settle();
    expect(await counter('prefetchStarted')).toBe(3);
    // The first request of a prefetched blob is told so (its answer says miss, not hit); the next is not.
    expect(prefetcher.requested(started[0]!.digest)).toBe(true);
    expect(prefetcher.requested(started[0]!.digest)).toBe(false);
    expect(prefetcher.requested('sha256:' + 'f'.repeat(64))).toBe(false);
    tick(1_000);
    await new Promise((resolve) => setTimeout(resolve, 600)); // the sweep runs every unusedAfter / 2
    expect(await counter('prefetchNeverRequested')).toBe(2);
  });

  it('does not tell a request of a blob prefetch is still looking at, or found stored, that prefetch fetched it', async () => {
    const answers: ((d: InflightBlob | undefined) => void)[] = [];
    const { prefetcher, routed } = setUp({}, { download: () => new Promise((resolve) => answers.push(resolve)) });
    const manifest = manifestWith(1);
    prefetcher.manifestServed(routed, manifest, { head: false, fetched: true });
    await settle();
    expect(answers).toHaveLength(2);
    const doc = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    expect(prefetcher.requested(doc.config.digest)).toBe(false); // still looking
    answers[1]!(undefined); // the layer was stored already: nothing downloaded
    await settle();
    expect(prefetcher.requested(doc.layers[0]!.digest)).toBe(false);
    answers[0]!(undefined);
  });

  it('breaks off on stop() the downloads no client asked for, and starts nothing more', async () => {
    const { prefetcher, routed, started } = setUp();
    prefetcher.manifestServed(routed, manifestWith(2), { head: false, fetched: true });
    await settle();
    prefetcher.requested(started[1]!.digest);
    prefetcher.stop();
    expect(started.map((d) => d.cancelled)).toEqual([true, false, true]);
    prefetcher.manifestServed(routed, manifestWith(4), { head: false, fetched: true });
    await settle();
    expect(started).toHaveLength(3);
  });
});
