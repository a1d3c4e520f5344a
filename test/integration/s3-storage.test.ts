// storage.s3 end to end, against a real Ceph RADOS Gateway and a real docker-registry upstream on
// loopback: skopeo pulls through the mirror and pushes into a hosted namespace with every byte in the
// bucket; a corrupt upstream blob never becomes an object; kill -9 during a cold download or a push
// leaves no object and, after the restart, no multipart upload. One Ceph for the file, a key prefix
// per test (its own empty store).
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startCeph, type RunningCeph } from '../support/ceph.ts';
import { runOcimirror } from '../support/cli.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror } from '../support/mirror.ts';
import { startMirrorProcess } from '../support/mirror-process.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let ceph: RunningCeph;
let registry: RunningRegistry;
let work: string;
let image: BuiltImage;
let big: BuiltImage;
let other: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('s3-storage-test');
  [ceph, registry] = await Promise.all([startCeph(), startRegistry()]);
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 3 * 1024 * 1024, seed: 's3-a' }, { files: { 'etc/motd': 'from the bucket\n' } }] });
  big = await buildImage(join(work, 'big'), { tag: 'v1', layers: [{ randomBytes: 24 * 1024 * 1024, seed: 's3-big' }] });
  await pushImage(image, registry, 'library/app:v1');
  await pushImage(big, registry, 'library/big:v1');
  other = await buildImage(join(work, 'other'), { tag: 'v1', layers: [{ randomBytes: 3 * 1024 * 1024, seed: 's3-other' }] });
  await pushImage(other, registry, 'library/other:v1');
}, 300_000);

afterAll(async () => {
  await Promise.all([ceph?.dispose(), registry?.dispose()]);
  if (work) await removeTempDir(work);
});

/** storage.s3 on its own key prefix of the test bucket, keys from environment variables as an operator would. */
function storage(prefix: string): { storage: ConfigInput['storage']; env: NodeJS.ProcessEnv } {
  return {
    storage: { s3: { endpoint: ceph.endpoint, bucket: ceph.bucket, region: ceph.region, prefix, accessKeyIdEnv: 'S3_ID', secretAccessKeyEnv: 'S3_KEY' } },
    env: { S3_ID: ceph.accessKeyId, S3_KEY: ceph.secretAccessKey },
  };
}

const freshPrefix = () => `it-${randomBytes(5).toString('hex')}/`;
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobKey = (prefix: string, digest: string) => `${prefix}blobs/sha256/${digest.slice('sha256:'.length)}`;
const layoutBlob = (layout: string, digest: string) => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));

describe('a mirror with storage.s3', () => {
  it('serves skopeo pulls from the bucket: blobs become objects, the data dir holds none, the second pull stays off upstream', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const dataDir = await makeTempDir('s3-data');
    const mirror = await startMirror({ dataDir, storage: s3, env, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    try {
      await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'pulled')}:x`, { preserveDigests: true });
      for (const layer of image.layers) {
        expect((await layoutBlob(join(work, 'pulled'), layer.digest)).equals(await layoutBlob(image.layoutDir, layer.digest))).toBe(true);
      }
      const keys = await ceph.listKeys(`${prefix}blobs/`);
      for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) expect(keys).toContain(blobKey(prefix, digest));
      expect(await readdir(dataDir)).not.toContain('blobs');
      expect(await (await fetch(`${mirror.url}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { dataDir: 'ok', storage: 'ok' } });
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);

      await registry.settle();
      registry.clearRequests();
      await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'pulled-again')}:x`);
      await registry.settle();
      expect(registry.requests().filter((r) => r.path.includes('/blobs/'))).toEqual([]);
    } finally {
      await mirror.dispose();
      await removeTempDir(dataDir);
    }
  }, 120_000);

  it('takes a skopeo push into a hosted namespace and gives the same bytes back, also to a new replica with an empty data dir', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const config = { storage: s3, env, hosted: { namespaces: ['lab'] }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] };
    const first = await startMirror(config);
    try {
      await skopeoCopy(image.ociRef, `docker://${first.host}/lab/app:1`, { preserveDigests: true });
      await skopeoCopy(`docker://${first.host}/lab/app:1`, `oci:${join(work, 'pushed-back')}:1`, { preserveDigests: true });
      for (const digest of [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)]) {
        expect((await layoutBlob(join(work, 'pushed-back'), digest)).equals(await layoutBlob(image.layoutDir, digest))).toBe(true);
      }
      expect(await ceph.listKeys(`${prefix}index/repositories/lab/app/_tags/`)).toEqual([`${prefix}index/repositories/lab/app/_tags/1`]);
      expect(await ceph.listKeys(`${prefix}sessions/`)).toEqual([]);
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
    } finally {
      await first.dispose();
    }
    // Everything that must survive is in the bucket: a replica that never saw the push serves it.
    const second = await startMirror(config);
    try {
      await skopeoCopy(`docker://${second.host}/lab/app:1`, `oci:${join(work, 'from-second')}:1`, { preserveDigests: true });
      for (const layer of image.layers) {
        expect((await layoutBlob(join(work, 'from-second'), layer.digest)).equals(await layoutBlob(image.layoutDir, layer.digest))).toBe(true);
      }
    } finally {
      await second.dispose();
    }
  }, 120_000);

  it('never makes an object of a corrupt upstream blob', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const proxy = await startFaultProxy(registry.url, { fault: 'flip-byte' });
    const mirror = await startMirror({ storage: s3, env, upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] });
    const layer = image.layers[0]!;
    try {
      const res = await fetch(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      await expect(skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'corrupt')}:x`)).rejects.toThrow();
      await mirror.runtime.idle();
      expect(await ceph.listKeys(`${prefix}blobs/`)).not.toContain(blobKey(prefix, layer.digest));
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
      expect(mirror.logText()).toContain('blob download failed; nothing cached');

      proxy.setFault('none');
      const body = Buffer.from(await (await fetch(`${mirror.url}/v2/library/app/blobs/${layer.digest}`)).arrayBuffer());
      expect(sha256(body)).toBe(layer.digest);
      await mirror.runtime.idle();
      expect(await ceph.listKeys(`${prefix}blobs/`)).toContain(blobKey(prefix, layer.digest));
    } finally {
      await mirror.dispose();
      await proxy.stop();
    }
  }, 120_000);

  it('evicts least recently used cached blobs from the bucket above cache.maxSize, never hosted ones', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const mirror = await startMirror({ storage: s3, env, cache: { maxSize: '5MiB' }, hosted: { namespaces: ['lab'] }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    const hostedImage = await buildImage(join(work, 'hosted-kept'), { tag: '1', layers: [{ randomBytes: 3 * 1024 * 1024, seed: 's3-hosted-kept' }] });
    const keyOf = (image: BuiltImage) => blobKey(prefix, image.layers[0]!.digest);
    try {
      await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'evict-a')}:x`);
      await skopeoCopy(hostedImage.ociRef, `docker://${mirror.host}/lab/kept:1`, { preserveDigests: true });
      await mirror.runtime.idle();
      expect(await ceph.listKeys(`${prefix}blobs/`)).toContain(keyOf(image));
      // 3 MiB more of cache: over 5 MiB, so the least recently used cached layer (app's) goes.
      await skopeoCopy(`docker://${mirror.host}/library/other:v1`, `oci:${join(work, 'evict-b')}:x`);
      await mirror.runtime.idle();
      let keys = await ceph.listKeys(`${prefix}blobs/`);
      for (let i = 0; i < 300 && keys.includes(keyOf(image)); i++) {
        await sleep(100);
        keys = await ceph.listKeys(`${prefix}blobs/`);
      }
      expect(keys).not.toContain(keyOf(image));
      expect(keys).toContain(keyOf(other));
      expect(keys).toContain(keyOf(hostedImage));
      // An evicted blob is simply fetched again.
      await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'evict-again')}:x`);
    } finally {
      await mirror.dispose();
    }
  }, 120_000);

  it('refuses to start, one line and exit 2, when the bucket refuses its keys', async () => {
    const dataDir = await makeTempDir('s3-bad-keys');
    const dir = await makeTempDir('s3-bad-keys-config');
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(file, JSON.stringify({ listen: '127.0.0.1:0', admin: false, dataDir, storage: { s3: { endpoint: ceph.endpoint, bucket: ceph.bucket, accessKeyId: ceph.accessKeyId, secretAccessKey: 'not-the-key' } } }));
      const result = await runOcimirror(['serve', '--config', file], { timeoutMs: 60_000 });
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^ocimirror: storage\.s3: cannot use bucket "[^"]+" at http:\/\/127\.0\.0\.1:\d+: /);
      expect(result.stderr + result.stdout).not.toContain('not-the-key');
    } finally {
      await removeTempDir(dir);
      await removeTempDir(dataDir);
    }
  }, 90_000);
});

describe('kill -9 with storage.s3', () => {
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy(registry.url);
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  /** Waits until the gateway holds a multipart upload under `prefix` (the first 8 MiB part went out). */
  async function multipartBegun(prefix: string): Promise<void> {
    for (let i = 0; i < 1200; i++) {
      if ((await ceph.listMultipartUploads(prefix)).length) return;
      await sleep(50);
    }
    throw new Error('no multipart upload began within 60 s');
  }

  it('during a cold download leaves no object, and the restart aborts the multipart upload', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const dataDir = await makeTempDir('s3-crash-download');
    const config = { dataDir, storage: s3, upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] };
    const layer = big.layers[0]!;
    proxy.setFault({ dripBytesPerSec: 4 * 1024 * 1024 });
    try {
      const first = await startMirrorProcess(config, { env });
      const download = fetch(`${first.url}/v2/library/big/blobs/${layer.digest}`).then((r) => r.arrayBuffer()).catch(() => undefined);
      await multipartBegun(prefix);
      await first.kill();
      await download;
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([]);
      expect((await ceph.listMultipartUploads(prefix)).length).toBe(1);

      proxy.setFault('none');
      const second = await startMirrorProcess(config, { env });
      try {
        expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
        expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([]);
        expect(second.logs().some((l) => l.msg === 'aborted multipart uploads left by an earlier run' && l.count === 1)).toBe(true);
        const body = Buffer.from(await (await fetch(`${second.url}/v2/library/big/blobs/${layer.digest}`)).arrayBuffer());
        expect(sha256(body)).toBe(layer.digest);
      } finally {
        await second.terminate();
      }
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([blobKey(prefix, layer.digest)]);
    } finally {
      proxy.setFault('none');
      await removeTempDir(dataDir);
    }
  }, 180_000);

  it('during a push leaves no object, and the restart aborts the multipart upload and expires the session', async () => {
    const prefix = freshPrefix();
    const { storage: s3, env } = storage(prefix);
    const dataDir = await makeTempDir('s3-crash-push');
    const config = { dataDir, storage: s3, hosted: { namespaces: ['lab'], uploadTtl: '2s' }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] };
    const bytes = randomBytes(20 * 1024 * 1024);
    try {
      const first = await startMirrorProcess(config, { env });
      const started = await fetch(`${first.url}/v2/lab/crash/blobs/uploads/`, { method: 'POST' });
      expect(started.status).toBe(202);
      const location = new URL(started.headers.get('location')!, first.url);
      // A client that sends 9 MiB of a PATCH and then stalls: the mirror is killed while it waits for more.
      let stall: () => void = () => {};
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.subarray(0, 9 * 1024 * 1024));
          stall = () => controller.close();
        },
      });
      const patch = fetch(location, { method: 'PATCH', body, duplex: 'half', headers: { 'content-type': 'application/octet-stream' } } as RequestInit).catch(() => undefined);
      await multipartBegun(prefix);
      await first.kill();
      stall();
      await patch;
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([]);

      const second = await startMirrorProcess(config, { env });
      try {
        expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
        expect(second.logs().some((l) => l.msg === 'aborted multipart uploads left by an earlier run')).toBe(true);
        for (let i = 0; i < 200 && (await ceph.listKeys(`${prefix}sessions/`)).length; i++) await sleep(100);
        expect(await ceph.listKeys(`${prefix}sessions/`)).toEqual([]);
        expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([]);
        // The push, begun again through the restarted mirror, lands whole.
        await skopeoCopy(big.ociRef, `docker://${second.host}/lab/crash:1`, { preserveDigests: true });
        expect(await ceph.listKeys(`${prefix}blobs/`)).toContain(blobKey(prefix, big.layers[0]!.digest));
        expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
      } finally {
        await second.terminate();
      }
    } finally {
      await removeTempDir(dataDir);
    }
  }, 180_000);
});
