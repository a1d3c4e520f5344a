// Two mirror processes sharing one Redis and one data dir behave as one cache: a cold blob asked of
// both at once is fetched from upstream once, and everyone gets the right bytes. (The fault proxy only
// slows the upstream so the requests overlap.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirrorProcess, type MirrorProcess } from '../support/mirror-process.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

describe('replicas sharing Redis and a data dir', () => {
  let work: string;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let redis: RunningRedis;
  let image: BuiltImage;
  const replicas: MirrorProcess[] = [];

  beforeAll(async () => {
    work = await makeTempDir('replicas-test');
    registry = await startRegistry();
    image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 24 * 1024 * 1024, seed: 'replicas' }] });
    await pushImage(image, registry, 'library/app:v1');
    proxy = await startFaultProxy(registry.url, { fault: { dripBytesPerSec: 24 * 1024 * 1024 } });
    redis = await startRedis();
    const config = {
      dataDir: join(work, 'shared-data'),
      redis: { url: redis.url },
      upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true, tagTtl: '1ms' }],
    };
    replicas.push(await startMirrorProcess(config), await startMirrorProcess(config));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.terminate(5_000)));
    await proxy?.stop();
    await redis?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  it('fetches a cold blob from upstream once for 10 clients on each of two replicas', async () => {
    const layer = image.layers[0]!;
    proxy.clearRequests();
    const clients = replicas.flatMap((replica) =>
      Array.from({ length: 10 }, async () => {
        const res = await fetch(`${replica.url}/v2/library/app/blobs/${layer.digest}`);
        expect(res.status).toBe(200);
        return `sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`;
      }),
    );
    const digests = await Promise.all(clients);
    expect(digests).toEqual(Array(20).fill(layer.digest));
    expect(proxy.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(1);
  }, 120_000);

  it('shares tag freshness: a tag revalidated by one replica is known to the other', async () => {
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    const first = await fetch(`${replicas[0]!.url}/v2/library/app/manifests/v1`, { headers: accept });
    expect(first.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    const second = await fetch(`${replicas[1]!.url}/v2/library/app/manifests/v1?ns=docker.io`, { headers: accept });
    expect(second.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    // The second replica never fetched the manifest body: it found the tag and the body shared.
    expect(proxy.requests().filter((r) => r.method === 'GET' && r.path.includes('/manifests/'))).toHaveLength(1);
  }, 60_000);
});
