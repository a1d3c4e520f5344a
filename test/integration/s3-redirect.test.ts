// storage.s3.redirect: GETs of stored blobs (cached and hosted) answer 307 to a short-lived presigned URL
// at the gateway, so the bytes bypass the mirror; HEADs and cold downloads stay with the mirror. skopeo
// and containerd's ctr follow it; Range requests work through it. Real Ceph RGW and docker-registry.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCeph, type RunningCeph } from '../support/ceph.ts';
import { startContainerd, type RunningContainerd } from '../support/containerd.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let ceph: RunningCeph;
let registry: RunningRegistry;
let mirror: RunningMirror;
let work: string;
let image: BuiltImage;
let pushed: BuiltImage;
const prefix = `redirect-${randomBytes(4).toString('hex')}/`;

beforeAll(async () => {
  work = await makeTempDir('s3-redirect-test');
  [ceph, registry] = await Promise.all([startCeph(), startRegistry()]);
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 2 * 1024 * 1024, seed: 'redirect-a' }, { files: { 'etc/redirected': 'yes\n' } }] });
  pushed = await buildImage(join(work, 'pushed'), { tag: '1', layers: [{ randomBytes: 1024 * 1024, seed: 'redirect-hosted' }, { files: { 'etc/hosted': 'pushed\n' } }] });
  await pushImage(image, registry, 'library/app:v1');
  mirror = await startMirror({
    storage: { s3: { endpoint: ceph.endpoint, bucket: ceph.bucket, prefix, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, redirect: true, redirectTtl: '2m' } },
    hosted: { namespaces: ['lab'] },
    upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
  });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await Promise.all([ceph?.dispose(), registry?.dispose()]);
  if (work) await removeTempDir(work);
});

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const layoutBlob = (layout: string, digest: string) => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
/** The mirror's access-log lines for blob GETs. */
const blobGets = () => mirror.logs().filter((l) => l.msg === 'request' && l.route === 'blob' && l.method === 'GET');

describe('storage.s3.redirect', () => {
  it('streams a cold blob itself, then answers 307 to a presigned gateway URL; HEAD stays with the mirror', async () => {
    const layer = image.layers[0]!;
    const url = `${mirror.url}/v2/library/app/blobs/${layer.digest}`;
    const cold = await fetch(url, { redirect: 'manual' });
    expect(cold.status).toBe(200);
    expect(cold.headers.get('x-ocimirror-cache')).toBe('miss');
    expect(sha256(Buffer.from(await cold.arrayBuffer()))).toBe(layer.digest);
    await mirror.runtime.idle();

    const warm = await fetch(url, { redirect: 'manual' });
    expect(warm.status).toBe(307);
    expect(warm.headers.get('x-ocimirror-cache')).toBe('hit');
    const location = new URL(warm.headers.get('location')!);
    expect(location.origin).toBe(ceph.endpoint);
    expect(location.pathname).toBe(`/${ceph.bucket}/${prefix}blobs/sha256/${layer.digest.slice(7)}`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('120');
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    const fromGateway = await fetch(location);
    expect(fromGateway.status).toBe(200);
    expect(sha256(Buffer.from(await fromGateway.arrayBuffer()))).toBe(layer.digest);
    // Only this URL: a neighbouring key is refused with the same signature.
    const forged = new URL(location);
    forged.pathname = `/${ceph.bucket}/${prefix}blobs/sha256/${image.layers[1]!.digest.slice(7)}`;
    expect((await fetch(forged)).status).toBe(403);

    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.size));
    expect(head.headers.get('location')).toBeNull();
  }, 60_000);

  it('keeps Range working: the gateway answers 206 with the asked bytes', async () => {
    const layer = image.layers[0]!;
    const bytes = await layoutBlob(image.layoutDir, layer.digest);
    const res = await fetch(`${mirror.url}/v2/library/app/blobs/${layer.digest}`, { headers: { range: 'bytes=1000-1999' } });
    expect(res.redirected).toBe(true);
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 1000-1999/${layer.size}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);
  }, 60_000);

  it('skopeo follows it for cached and for hosted blobs, bytes identical', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'warm')}:x`, { preserveDigests: true });
    await mirror.runtime.idle();
    const before = blobGets().length;
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'cached')}:x`, { preserveDigests: true });
    for (const layer of image.layers) expect((await layoutBlob(join(work, 'cached'), layer.digest)).equals(await layoutBlob(image.layoutDir, layer.digest))).toBe(true);
    const cachedGets = blobGets().slice(before);
    expect(cachedGets.length).toBeGreaterThanOrEqual(image.layers.length);
    expect(cachedGets.filter((l) => l.status !== 307)).toEqual([]);

    await skopeoCopy(pushed.ociRef, `docker://${mirror.host}/lab/app:1`, { preserveDigests: true });
    const afterPush = blobGets().length;
    await skopeoCopy(`docker://${mirror.host}/lab/app:1`, `oci:${join(work, 'hosted')}:1`, { preserveDigests: true });
    for (const layer of pushed.layers) expect((await layoutBlob(join(work, 'hosted'), layer.digest)).equals(await layoutBlob(pushed.layoutDir, layer.digest))).toBe(true);
    const hostedGets = blobGets().slice(afterPush);
    expect(hostedGets.length).toBeGreaterThanOrEqual(pushed.layers.length);
    expect(hostedGets.filter((l) => l.status !== 307)).toEqual([]);
  }, 120_000);

  describe('containerd', () => {
    let containerd: RunningContainerd;
    beforeAll(async () => {
      containerd = await startContainerd();
    }, 120_000);
    afterAll(async () => {
      await containerd?.dispose();
    });

    it('ctr pulls and unpacks a hosted image through the redirects', async () => {
      const hostsDir = join(work, 'hosts');
      await mkdir(join(hostsDir, mirror.host), { recursive: true });
      await writeFile(join(hostsDir, mirror.host, 'hosts.toml'), `server = "${mirror.url}"\n\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`);
      const before = blobGets().length;
      await containerd.pull(`${mirror.host}/lab/app:1`, { hostsDir, platform: 'linux/amd64' });
      expect(await containerd.readUnpacked('etc/hosted')).toBe('pushed\n');
      const ctrGets = blobGets().slice(before).filter((l) => String(l.userAgent).startsWith('containerd/'));
      expect(ctrGets.length).toBeGreaterThanOrEqual(pushed.layers.length);
      expect(ctrGets.filter((l) => l.status !== 307)).toEqual([]);
    }, 120_000);
  });
});
