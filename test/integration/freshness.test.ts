// Tag freshness: within the TTL a tag is answered from cache; after it, one HEAD revalidates it, a moved
// tag is refetched, and an unreachable upstream gets the cached answer marked stale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { STORE_KINDS, setUpStore, type StoreSetup } from '../support/store-kinds.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const TTL_MS = 1_500;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

describe.each(STORE_KINDS)('tag TTL and stale-if-error (%s metadata store)', (kind) => {
  let work: string;
  let registry: RunningRegistry;
  let first: BuiltImage;
  let second: BuiltImage;
  let store: StoreSetup;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('freshness-test');
    registry = await startRegistry();
    first = await buildImage(join(work, 'first'), { tag: 'latest', layers: [{ files: { v: '1' } }] });
    second = await buildImage(join(work, 'second'), { tag: 'latest', layers: [{ files: { v: '2' } }] });
    await pushImage(first, registry, 'library/app:latest');
    store = await setUpStore(kind);
    mirror = await startMirror({ ...store.config, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, tagTtl: `${TTL_MS}ms` }] });
  }, 300_000);

  afterAll(async () => {
    await mirror?.dispose();
    await store?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  const get = () => rawRequest(mirror.url, { path: '/v2/library/app/manifests/latest', headers: { accept: ACCEPT } });
  const manifestRequests = () => registry.requests().filter((r) => r.path.includes('/manifests/'));

  it('serves the old digest within the TTL after a retag, the new one after it', async () => {
    expect((await get()).headers['docker-content-digest']).toBe(first.manifestDigest);
    await pushImage(second, registry, 'library/app:latest');
    const within = await get();
    expect(within.headers['docker-content-digest']).toBe(first.manifestDigest);
    expect(within.headers['x-ocimirror-cache']).toBe('hit');
    await sleep(TTL_MS + 200);
    const after = await get();
    expect(after.headers['docker-content-digest']).toBe(second.manifestDigest);
  }, 60_000);

  it('revalidates an unchanged tag with one HEAD and no GET', async () => {
    await sleep(TTL_MS + 200);
    await registry.settle();
    registry.clearRequests();
    const res = await get();
    expect(res.headers['docker-content-digest']).toBe(second.manifestDigest);
    await registry.settle();
    expect(manifestRequests().map((r) => r.method)).toEqual(['HEAD']);
  }, 60_000);

  it('serves the cached tag, marked stale, when the upstream is down after the TTL', async () => {
    await registry.stop();
    try {
      await sleep(TTL_MS + 200);
      const res = await get();
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(second.manifestDigest);
      expect(res.headers['x-ocimirror-cache']).toBe('stale');
      expect(res.headers.warning).toContain('110');
      expect(mirror.logText()).toContain('serving cached tag past its TTL');
    } finally {
      await registry.start();
    }
  }, 60_000);
});
