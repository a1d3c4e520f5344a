// A by-digest manifest pull that the memory LRU no longer holds reads its metadata record from Redis
// once: the check that the mirror may serve the digest (mirror/hosted-guard.ts) hands the record it
// read to the load. Counted with Redis's own INFO commandstats, on a real redis-server.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let work: string;
let registry: RunningRegistry;
let content: SeededContent;
let redis: RunningRedis;
let client: Redis;
let mirror: RunningMirror;

beforeAll(async () => {
  work = await makeTempDir('manifest-reads');
  registry = await startRegistry();
  content = await buildAndPush(registry, work);
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  mirror = await startMirror({
    redis: { url: redis.url, keyPrefix: 'reads:' },
    // One manifest in memory: fetching a second one pushes the first out.
    cache: { manifestLruEntries: 1 },
    // No layer prefetch: its blob-record reads would run beside the counted request.
    upstreams: [{ name: 'docker.io', url: registry.url, default: true, prefetch: false }],
  });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  client?.disconnect();
  await redis?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

async function redisGets(): Promise<number> {
  const stats = await client.info('commandstats');
  return Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

describe('a cached manifest by digest, out of the memory LRU', () => {
  it('is answered from the stores with one metadata read', async () => {
    const alpine = `${mirror.url}/v2/library/alpine/manifests/${content.alpine.manifestDigest}`;
    const first = await fetch(alpine, { headers: { accept: OCI_MANIFEST } });
    expect(first.status).toBe(200);
    const body = Buffer.from(await first.arrayBuffer());
    const index = await fetch(`${mirror.url}/v2/library/multi/manifests/${content.multi.indexDigest}`, { headers: { accept: OCI_INDEX } });
    expect(index.status).toBe(200);
    await index.arrayBuffer();

    await client.config('RESETSTAT');
    // Another Accept than the first request's, so no replay of that answer stands in.
    const again = await fetch(alpine, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ocimirror-cache')).toBe('hit');
    expect(again.headers.get('docker-content-digest')).toBe(content.alpine.manifestDigest);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
    expect(await redisGets()).toBe(1);
  });
});
