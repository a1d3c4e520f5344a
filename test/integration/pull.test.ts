// Pulling through the mirror with skopeo gives exactly what the upstream has; the second pull comes
// from the mirror's disk, even with the upstream stopped. Runs once per metadata store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { manifestDigestOf, skopeoCopy } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { STORE_KINDS, setUpStore, type StoreSetup } from '../support/store-kinds.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { blobGets, buildAndPush, type SeededContent } from '../support/upstream-content.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let registry: RunningRegistry;
let content: SeededContent;

beforeAll(async () => {
  work = await makeTempDir('pull-test');
  registry = await startRegistry();
  content = await buildAndPush(registry, work, { big: true });
}, 600_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

describe.each(STORE_KINDS)('pull through the mirror with the %s metadata store', (kind) => {
  let store: StoreSetup;
  let mirror: RunningMirror;
  let copies = 0;

  /** skopeo copy from `host` to a fresh OCI layout; returns the layout dir. */
  async function copyFrom(host: string, reference: string, all = false): Promise<void> {
    const dest = join(work, `${kind}-copy-${copies++}`);
    await skopeoCopy(`docker://${host}/${reference}`, `oci:${dest}:x`, { all, timeoutMs: 300_000 });
  }

  beforeAll(async () => {
    store = await setUpStore(kind);
    mirror = await startMirror({
      ...store.config,
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true, tagTtl: '10m' }],
    });
  }, 120_000);

  afterAll(async () => {
    await mirror?.dispose();
    await store?.dispose();
  });

  it('serves the same manifests and blobs as the upstream (OCI, Docker schema 2, multi-arch index, 100 MB layer)', async () => {
    for (const [reference, all] of [
      ['library/alpine:3.8', false],
      [`${content.dockerRepo}:1`, false],
      ['library/multi:1', true],
      ['big/layer:1', false],
    ] as const) {
      await copyFrom(mirror.host, reference, all);
      expect(await manifestDigestOf(`docker://${mirror.host}/${reference}`), reference).toBe(await manifestDigestOf(`docker://${registry.host}/${reference}`));
    }
    expect(await manifestDigestOf(`docker://${mirror.host}/library/multi:1`)).toBe(content.multi.indexDigest);
    expect(await manifestDigestOf(`docker://${mirror.host}/big/layer:1`)).toBe(content.big!.manifestDigest);
  }, 600_000);

  it('maps Docker Hub official image names to library/', async () => {
    expect(await manifestDigestOf(`docker://${mirror.host}/alpine:3.8`)).toBe(content.alpine.manifestDigest);
  }, 120_000);

  it('serves a second pull from its own disk: no blob request reaches the upstream', async () => {
    await registry.settle();
    registry.clearRequests();
    await copyFrom(mirror.host, 'library/alpine:3.8');
    await copyFrom(mirror.host, 'library/multi:1', true);
    await copyFrom(mirror.host, 'big/layer:1');
    await registry.settle();
    expect(blobGets(registry)).toBe(0);
  }, 300_000);

  it('serves cached images while the upstream is stopped', async () => {
    await registry.stop();
    try {
      await copyFrom(mirror.host, 'library/alpine:3.8');
      await copyFrom(mirror.host, `${content.dockerRepo}:1`);
      await copyFrom(mirror.host, 'library/multi:1', true);
    } finally {
      await registry.start();
    }
  }, 300_000);

  it('answers HEAD and GET of a manifest with digest, type and length', async () => {
    const url = `${mirror.url}/v2/library/alpine/manifests/3.8`;
    const head = await fetch(url, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(content.alpine.manifestDigest);
    expect(head.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(head.headers.get('content-length')).toBe(String(content.alpine.manifestSize));
    expect(head.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const byDigest = await fetch(`${mirror.url}/v2/library/alpine/manifests/${content.alpine.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
    expect(byDigest.status).toBe(200);
    expect((await byDigest.arrayBuffer()).byteLength).toBe(content.alpine.manifestSize);
  });

  it('answers byte ranges of a cached blob with 206 and Content-Range', async () => {
    const layer = content.alpine.layers[1]!;
    const res = await fetch(`${mirror.url}/v2/library/alpine/blobs/${layer.digest}`, { headers: { range: 'bytes=10-19' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 10-19/${layer.size}`);
    expect((await res.arrayBuffer()).byteLength).toBe(10);
    const beyond = await fetch(`${mirror.url}/v2/library/alpine/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${layer.size}`);
    expect(((await beyond.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('RANGE_INVALID');
  });
});
