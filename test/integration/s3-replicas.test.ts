// Two replicas with separate data dirs, one Redis and one bucket (storage.s3), no shared volume: a cold
// blob is fetched from upstream once, and the replica that does not download it streams it from the one
// that does (storage.s3.peerUrl, routes/peer-uploads.ts), its clients' first bytes arriving while the
// download is still running; a push through one replica is pulled through the other at once; GC run on
// one replica frees unreferenced blobs from the bucket for both. Real Ceph RGW, redis-server, docker-registry.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCeph, type RunningCeph } from '../support/ceph.ts';
import { requireBinary } from '../support/binaries.ts';
import { runCommand } from '../support/command.ts';
import { ocimirrorOk } from '../support/cli.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let ceph: RunningCeph;
let redis: RunningRedis;
let registry: RunningRegistry;
let proxy: FaultProxy;
let work: string;
let cold: BuiltImage;
let a: RunningMirror;
let b: RunningMirror;
const prefix = `replicas-${randomBytes(4).toString('hex')}/`;

async function replica(name: string): Promise<RunningMirror> {
  const port = await freePort();
  return startMirror({
    listen: `127.0.0.1:${port}`,
    dataDir: await makeTempDir(`s3-replica-${name}`),
    redis: { url: redis.url, keyPrefix: `${prefix}:` },
    storage: { s3: { endpoint: ceph.endpoint, bucket: ceph.bucket, prefix, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, peerUrl: `http://127.0.0.1:${port}` } },
    hosted: { namespaces: ['lab'] },
    gc: { interval: 0, grace: '0s' },
    upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }],
  });
}

beforeAll(async () => {
  work = await makeTempDir('s3-replicas-test');
  [ceph, redis, registry] = await Promise.all([startCeph(), startRedis(), startRegistry()]);
  proxy = await startFaultProxy(registry.url);
  cold = await buildImage(join(work, 'cold'), { tag: 'v1', layers: [{ randomBytes: 24 * 1024 * 1024, seed: 'replicas-cold' }] });
  await pushImage(cold, registry, 'library/cold:v1');
  a = await replica('a');
  b = await replica('b');
}, 300_000);

afterAll(async () => {
  await a?.dispose();
  await b?.dispose();
  await proxy?.stop();
  await Promise.all([ceph?.dispose(), redis?.dispose(), registry?.dispose()]);
  if (work) await removeTempDir(work);
});

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const layoutBlob = (layout: string, digest: string) => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));

interface ClientResult {
  readonly digest: string;
  readonly firstByteAt: number;
  readonly endAt: number;
}

/** One client's GET, timing its first byte and its end. */
async function client(url: string): Promise<ClientResult> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  const hash = createHash('sha256');
  let firstByteAt = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    if (!firstByteAt && chunk.byteLength) firstByteAt = Date.now();
    hash.update(chunk);
  }
  return { digest: `sha256:${hash.digest('hex')}`, firstByteAt, endAt: Date.now() };
}

describe('two replicas, one Redis, one bucket', () => {
  it('10 clients on each for one cold blob: 1 upstream GET, 20 correct bodies, replica B streaming before the download ends', async () => {
    const layer = cold.layers[0]!;
    const path = `/v2/library/cold/blobs/${layer.digest}`;
    proxy.clearRequests();
    // About 6 s upstream: long enough to tell "streamed from the peer" from "read after the download".
    proxy.setFault({ dripBytesPerSec: 4 * 1024 * 1024 });
    try {
      const onA = Array.from({ length: 10 }, () => client(`${a.url}${path}`));
      // B's clients come once A is downloading, so A holds the lease and B follows it.
      for (let i = 0; i < 600 && !a.runtime.deps.downloads.has(layer.digest); i++) await new Promise((r) => setTimeout(r, 20));
      expect(a.runtime.deps.downloads.has(layer.digest)).toBe(true);
      const onB = Array.from({ length: 10 }, () => client(`${b.url}${path}`));
      const results = await Promise.all([...onA, ...onB]);
      expect(results.map((r) => r.digest)).toEqual(Array.from({ length: 20 }, () => layer.digest));
      expect(proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`))).toHaveLength(1);
      // Every B client had bytes before any client (all read behind the one download) had the last one.
      const downloadEnded = Math.min(...results.map((r) => r.endAt));
      const bFirstBytes = results.slice(10).map((r) => r.firstByteAt);
      expect(Math.max(...bFirstBytes)).toBeLessThan(downloadEnded);
      expect(b.logs().some((l) => l.msg === 'blob followed from another mirror process' && l.digest === layer.digest)).toBe(true);
      expect(b.logs().some((l) => l.msg === 'blob cached')).toBe(false);
      await Promise.all([a.runtime.idle(), b.runtime.idle()]);
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([`${prefix}blobs/sha256/${layer.digest.slice(7)}`]);
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
    } finally {
      proxy.setFault('none');
    }
  }, 180_000);

  it('answers a peer 404 for an upload it is not writing, whatever the query', async () => {
    for (const query of ['', '?from=0&length=10', '?from=-5&length=abc']) {
      const res = await fetch(`${a.url}/_ocimirror/uploads/${'0'.repeat(32)}${query}`);
      expect(res.status).toBe(404);
    }
  });

  it('a push through A is pulled through B at once, bytes identical', async () => {
    const image = await buildImage(join(work, 'pushed'), { tag: '1', layers: [{ randomBytes: 2 * 1024 * 1024, seed: 'replicas-push' }, { files: { 'etc/replica': 'a\n' } }] });
    await skopeoCopy(image.ociRef, `docker://${a.host}/lab/app:1`, { preserveDigests: true });
    await skopeoCopy(`docker://${b.host}/lab/app:1`, `oci:${join(work, 'via-b')}:1`, { preserveDigests: true });
    for (const digest of [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)]) {
      expect((await layoutBlob(join(work, 'via-b'), digest)).equals(await layoutBlob(image.layoutDir, digest))).toBe(true);
    }
  }, 120_000);

  it('the peer route answers an unknown or malformed upload name with the OCI error JSON, 404', async () => {
    for (const name of [randomBytes(16).toString('hex'), '..%2f..%2fetc', 'x'.repeat(300)]) {
      const res = await fetch(`${a.url}/_ocimirror/uploads/${name}?from=-5&length=abc`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('BLOB_UPLOAD_UNKNOWN');
    }
  });

  it('one GC run at a time across the replicas: while a run holds its Redis lease, the other replica refuses to start one', async () => {
    const redisCli = (...args: string[]) => runCommand(requireBinary('redis-cli', 'redis-tools'), ['-h', '127.0.0.1', '-p', String(redis.port), ...args]);
    // A run under way on some replica, as its lease says (the replicas share no data dir to lock in).
    const lease = `${prefix}:lock:gc-run`;
    expect((await redisCli('SET', lease, 'another-replica', 'PX', '30000', 'NX')).stdout.trim()).toBe('OK');
    try {
      const busy = await fetch(`${b.adminUrl}/_ocimirror/gc`, { method: 'POST' });
      expect(busy.status).toBe(409);
      expect(await busy.text()).toContain('already running');
    } finally {
      await redisCli('DEL', lease);
    }
    const free = await fetch(`${b.adminUrl}/_ocimirror/gc?dryRun=1`, { method: 'POST' });
    expect(free.status).toBe(200);
  });

  it('GC run on A frees what no tag reaches from the bucket, for B too, and keeps the rest', async () => {
    const kept = await buildImage(join(work, 'kept'), { tag: '1', layers: [{ randomBytes: 64 * 1024, seed: 'replicas-kept' }] });
    const dropped = await buildImage(join(work, 'dropped'), { tag: '1', layers: [{ randomBytes: 64 * 1024, seed: 'replicas-dropped' }] });
    await skopeoCopy(kept.ociRef, `docker://${a.host}/lab/kept:1`, { preserveDigests: true });
    await skopeoCopy(dropped.ociRef, `docker://${b.host}/lab/dropped:1`, { preserveDigests: true });
    // A pull through B caches library/cold:v1's manifest and tag (in Redis and the bucket), which reach the cold blob.
    await skopeoCopy(`docker://${b.host}/library/cold:v1`, `oci:${join(work, 'cold-via-b')}:v1`, { preserveDigests: true });
    const deleted = await fetch(`${b.url}/v2/lab/dropped/manifests/${dropped.manifestDigest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const droppedKey = `${prefix}blobs/sha256/${dropped.layers[0]!.digest.slice(7)}`;
    expect(await ceph.listKeys(`${prefix}blobs/`)).toContain(droppedKey);

    await ocimirrorOk(['gc', '--admin', a.adminUrl!]);
    const keys = await ceph.listKeys(`${prefix}blobs/`);
    expect(keys).not.toContain(droppedKey);
    expect(keys).toContain(`${prefix}blobs/sha256/${kept.layers[0]!.digest.slice(7)}`);
    // The cached cold blob stays: the cached tag B recorded reaches it.
    expect(keys).toContain(`${prefix}blobs/sha256/${cold.layers[0]!.digest.slice(7)}`);
    expect((await fetch(`${b.url}/v2/lab/dropped/blobs/${dropped.layers[0]!.digest}`)).status).toBe(404);
    await skopeoCopy(`docker://${b.host}/lab/kept:1`, `oci:${join(work, 'kept-via-b')}:1`, { preserveDigests: true });
    const body = Buffer.from(await (await fetch(`${b.url}/v2/library/cold/blobs/${cold.layers[0]!.digest}`)).arrayBuffer());
    expect(sha256(body)).toBe(cold.layers[0]!.digest);
  }, 120_000);
});
