// Upstream misbehaviour a real registry cannot be made to produce (a reset mid-blob, bursts of 5xx and
// 429) comes from the scripted fault proxy; 404s come from the real registry behind it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { errorCode, rawRequest } from '../support/http.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import type { RunningMirror } from '../support/mirror.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { startStack, type Stack } from '../support/stack.ts';

const NEGATIVE_TTL_MS = 1_500;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

describe('upstream faults', () => {
  let stack: Stack;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let mirror: RunningMirror;
  let image: BuiltImage;

  beforeAll(async () => {
    stack = await startStack({
      name: 'faults-test',
      faultProxy: true,
      mirror: { cache: { negativeTtl: `${NEGATIVE_TTL_MS}ms` } },
      seed: async (work, upstream) => {
        image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 4 * 1024 * 1024, seed: 'faults' }, { files: { a: 'b' } }] });
        for (const repo of ['reset', 'flaky', 'limited']) await pushImage(image, upstream, `library/${repo}:v1`);
      },
    });
    ({ registry, proxy, mirror } = stack as Stack & { proxy: FaultProxy });
  }, 300_000);

  afterAll(async () => {
    await stack?.dispose();
  });

  beforeEach(() => {
    proxy.setFault('none');
    proxy.clearRequests();
  });

  const layer = () => image.layers[0]!;
  const sha256 = (bytes: ArrayBuffer) => `sha256:${createHash('sha256').update(Buffer.from(bytes)).digest('hex')}`;
  const upstreamGets = (part: string) => proxy.requests().filter((r) => r.method === 'GET' && r.path.includes(part)).length;

  it('breaks the client connection on a reset mid-blob, drops the partial file, and refetches next time', async () => {
    proxy.setFault('reset-mid-blob');
    const url = `${mirror.url}/v2/library/reset/blobs/${layer().digest}`;
    const res = await fetch(url);
    await expect(res.arrayBuffer()).rejects.toThrow();
    await sleep(100);
    expect(await mirror.runtime.deps.blobs.stat(layer().digest)).toBeUndefined();
    expect(await readdir(join(mirror.config.dataDir, 'blobs', '_uploads'))).toEqual([]);
    proxy.setFault('none');
    expect(sha256(await (await fetch(url)).arrayBuffer())).toBe(layer().digest);
    expect(upstreamGets('/blobs/')).toBe(2);
  }, 60_000);

  it('retries 5xx before answering, and the client never sees them', async () => {
    proxy.setFault({ status: 503, times: 2 });
    const res = await rawRequest(mirror.url, { path: '/v2/library/flaky/manifests/v1', headers: { accept: ACCEPT } });
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.manifestDigest);
    expect(proxy.requests().filter((r) => r.status === 503)).toHaveLength(2);
  });

  it('answers 503 UNAVAILABLE when the upstream keeps failing and nothing is cached', async () => {
    proxy.setFault({ status: 502, times: 10 });
    const res = await rawRequest(mirror.url, { path: '/v2/library/limited/manifests/v1', headers: { accept: ACCEPT } });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(errorCode(res)).toBe('UNAVAILABLE');
  });

  it('passes 429 on as TOOMANYREQUESTS with Retry-After when nothing is cached', async () => {
    proxy.setFault({ status: 429, times: 5, retryAfter: '7' });
    const res = await rawRequest(mirror.url, { path: '/v2/library/limited/manifests/v1', headers: { accept: ACCEPT } });
    expect(res.status).toBe(429);
    expect(errorCode(res)).toBe('TOOMANYREQUESTS');
    expect(res.headers['retry-after']).toBe('7');
    expect(proxy.requests()).toHaveLength(1);
  });

  it('remembers an upstream 404 for the negative TTL, then asks again', async () => {
    const missing = () => rawRequest(mirror.url, { path: '/v2/library/later/manifests/v1', headers: { accept: ACCEPT } });
    expect((await missing()).status).toBe(404);
    expect(errorCode(await missing())).toBe('MANIFEST_UNKNOWN');
    expect(upstreamGets('/manifests/')).toBe(1);
    await pushImage(image, registry, 'library/later:v1');
    expect((await missing()).status).toBe(404);
    await sleep(NEGATIVE_TTL_MS + 200);
    const found = await missing();
    expect(found.status).toBe(200);
    expect(found.headers['docker-content-digest']).toBe(image.manifestDigest);
    const metrics = (await rawRequest(mirror.url, { path: '/metrics' })).body.toString();
    expect(metrics).toMatch(/ocimirror_cache_lookups_total\{kind="tag",result="negative"\} [1-9]/);
  }, 60_000);
});
