// A Redis that hangs instead of failing (a frozen server, a partition: connections are accepted, nothing
// answers) must cost a pull a bounded wait, not a hang: commands time out, and the mirror degrades to
// serving from disk as with a Redis that is down. /readyz says not ready, and both recover on their own
// when Redis answers again. The hang is a real redis-server stopped with SIGSTOP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFreezableRedis, type FreezableRedis } from '../support/frozen-redis.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/** What "bounded" means here: a couple of command timeouts, far below the minute it used to take. */
const BOUND_MS = 8_000;

let work: string;
let registry: RunningRegistry;
let redis: FreezableRedis;
let mirror: RunningMirror;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('redis-hang-test');
  registry = await startRegistry();
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 256 * 1024, seed: 'redis-hang' }, { files: { x: '1\n' } }] });
  await pushImage(image, registry, 'library/app:v1');
  await pushImage(image, registry, 'library/app:v2');
  redis = await startFreezableRedis();
  mirror = await startMirror({
    redis: { url: redis.url, keyPrefix: 'hang:' },
    // tagTtl 0: every tag pull looks the tag up in Redis, then asks the upstream.
    upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, tagTtl: '0s' }],
  });
}, 300_000);

afterAll(async () => {
  redis?.thaw();
  await mirror?.dispose();
  await redis?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

/** A GET that gives up after 30 s (the old behaviour: no answer until Redis came back). */
async function timedGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; ms: number; body: string }> {
  const started = Date.now();
  const res = await fetch(`${mirror.url}${path}`, { headers, signal: AbortSignal.timeout(30_000) });
  const body = await res.text();
  return { status: res.status, ms: Date.now() - started, body };
}

describe('a Redis that hangs', () => {
  it('costs a cached pull a bounded wait, makes /readyz say not ready, and both recover after SIGCONT', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'before')}:x`);
    expect((await timedGet('/readyz')).status).toBe(200);
    expect(await mirror.runtime.deps.meta.listTags('docker.io', 'library/app')).toEqual(['v1']);

    redis.freeze();
    try {
      const manifest = await timedGet('/v2/library/app/manifests/v1', { accept: 'application/vnd.oci.image.manifest.v1+json' });
      expect(manifest.status).toBe(200);
      expect(manifest.ms).toBeLessThan(BOUND_MS);
      const blob = await timedGet(`/v2/library/app/blobs/${image.layers[0]!.digest}`);
      expect(blob.status).toBe(200);
      expect(blob.ms).toBeLessThan(BOUND_MS);

      const started = Date.now();
      await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'frozen')}:x`, { timeoutMs: 60_000 });
      expect(Date.now() - started).toBeLessThan(BOUND_MS);

      const ready = await timedGet('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.ms).toBeLessThan(BOUND_MS);
      expect(JSON.parse(ready.body)).toMatchObject({ status: 'not ready', checks: { redis: expect.not.stringMatching(/^ok$/) } });
      expect(await (await fetch(`${mirror.url}/metrics`)).text()).toMatch(/ocimirror_redis_errors_total [1-9]/);
    } finally {
      redis.thaw();
    }

    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await sleep(200);
      status = (await timedGet('/readyz')).status;
    }
    expect(status).toBe(200);
    // Redis is used again: a new tag is recorded there.
    await skopeoCopy(`docker://${mirror.host}/library/app:v2`, `oci:${join(work, 'after')}:x`);
    expect(await mirror.runtime.deps.meta.listTags('docker.io', 'library/app')).toEqual(['v1', 'v2']);
  }, 180_000);
});
