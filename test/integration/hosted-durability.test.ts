// Hosted content is data, not cache: a mirror killed with SIGKILL mid-push leaves nothing half-visible
// (no partial blob, no tag without its manifest), a broken upload resumes from what reached the disk,
// a Redis FLUSHALL forgets no hosted tag, and eviction never takes a hosted blob.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../support/binaries.ts';
import { runCommand } from '../support/command.ts';
import { buildImage, pushImage, skopeoCopy, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startMirrorProcess, type MirrorProcess } from '../support/mirror-process.ts';
import { blobPath } from '../support/oci-layout.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const UPSTREAM_IMAGES = 5;

let work: string;
let registry: RunningRegistry;
/** One ~3 MiB layer: uploaded in chunks, the second of which is cut by kill -9. */
let chunked: BuiltImage;
/** Two small layers: every blob pushed, then kill -9 before the manifest. */
let halfPushed: BuiltImage;
/** Pushed to a mirror that uses Redis. */
let flushed: BuiltImage;
/** ~2 MiB in two layers, the first shared with upstream image 0: the hosted image that eviction must spare. */
let kept: BuiltImage;
/** Upstream images of one 1 MiB layer each: pulled to push the cache over budget. */
const upstreamImages: BuiltImage[] = [];

beforeAll(async () => {
  work = await makeTempDir('hosted-durability-test');
  registry = await startRegistry();
  chunked = await buildImage(join(work, 'chunked'), { tag: '1', layers: [{ randomBytes: 3 * MiB, seed: 'hosted-durability-chunked' }] });
  halfPushed = await buildImage(join(work, 'half'), { tag: '1', layers: [{ files: { 'etc/half': 'half\n' } }, { randomBytes: 256 * 1024, seed: 'hosted-durability-half' }] });
  flushed = await buildImage(join(work, 'flushed'), { tag: '1', layers: [{ files: { 'etc/flushed': 'redis may forget\n' } }] });
  kept = await buildImage(join(work, 'kept'), {
    tag: '1',
    layers: [
      // The same layer as upstream image 0's (same seed, same position).
      { randomBytes: MiB, seed: 'hosted-durability-upstream-0' },
      { randomBytes: MiB, seed: 'hosted-durability-keep-1' },
    ],
  });
  for (let i = 0; i < UPSTREAM_IMAGES; i++) {
    const image = await buildImage(join(work, `up${i}`), { tag: 'v1', layers: [{ randomBytes: MiB, seed: `hosted-durability-upstream-${i}` }] });
    await pushImage(image, registry, `library/up${i}:v1`);
    upstreamImages.push(image);
  }
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const upstreams = () => [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }];
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);
const layoutBlob = (image: BuiltImage, digest: string) => readFile(blobPath(image.layoutDir, digest));
const errorCode = async (res: Response) => ((await res.json()) as { errors?: { code: string }[] }).errors?.[0]?.code;

/** Every blob of an image as it is pushed: config, layers and the manifest. */
async function sizes(image: BuiltImage): Promise<{ blobs: number; manifest: number }> {
  let blobs = (await stat(blobPath(image.layoutDir, image.configDigest))).size;
  for (const layer of image.layers) blobs += layer.size;
  return { blobs, manifest: image.manifestSize };
}

/** The files of the content-addressed blob tree (`<dataDir>/blobs/<alg>/..`), without upload temp dirs. */
async function storedBlobFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .filter((path) => !path.startsWith('_'));
}

/** Fails unless every file in the blob tree holds exactly the bytes its name promises. */
async function expectOnlyWholeBlobs(dataDir: string): Promise<string[]> {
  const files = await storedBlobFiles(dataDir);
  for (const file of files) {
    const [algorithm, , hex] = file.split('/');
    expect(algorithm, file).toBe('sha256');
    expect(sha256(await readFile(join(dataDir, 'blobs', file))), `${file} is not whole`).toBe(`sha256:${hex}`);
  }
  return files;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * A PATCH whose body is fed 64 KiB at a time and never finished: the connection stays open until the
 * server goes away. `settled` resolves with the response status or the error that cut the request.
 */
function trickle(url: string, start: number, bytes: Buffer): { settled: Promise<{ status?: number; error?: string }>; sent: () => number } {
  const target = new URL(url);
  let sent = 0;
  let open = true;
  const req = httpRequest({
    host: target.hostname,
    port: target.port,
    path: `${target.pathname}${target.search}`,
    method: 'PATCH',
    agent: false,
    // No Content-Length: a chunked body of unknown length, as a streaming client sends it.
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + bytes.length - 1}` },
  });
  const settled = new Promise<{ status?: number; error?: string }>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode });
    });
    req.on('error', (err) => resolve({ error: err.message }));
    req.on('close', () => {
      open = false;
      resolve({ error: 'closed' });
    });
  });
  void (async () => {
    // All but the last piece: the body is never complete, whatever the timing.
    const PIECE = 64 * 1024;
    while (open && sent + PIECE < bytes.length) {
      req.write(bytes.subarray(sent, sent + PIECE));
      sent += PIECE;
      await sleep(10);
    }
  })();
  return { settled, sent: () => sent };
}

describe('kill -9 during a chunked upload', () => {
  it('leaves no partial blob visible; the upload reports its progress after a restart and resumes; skopeo retries to success', async () => {
    const dataDir = join(work, 'chunked-data');
    const config = { dataDir, hosted: { namespaces: ['lab'] }, upstreams: upstreams() };
    const layer = chunked.layers[0]!;
    const bytes = await layoutBlob(chunked, layer.digest);
    const FIRST = MiB;
    let first: MirrorProcess | undefined;
    let second: MirrorProcess | undefined;
    try {
      first = await startMirrorProcess(config);
      const started = await fetch(`${first.url}/v2/lab/x/blobs/uploads/`, { method: 'POST' });
      expect(started.status).toBe(202);
      const location = started.headers.get('location')!;
      const sessionFile = join(dataDir, 'blobs', '_sessions', location.split('/').pop()!);

      const chunk = await fetch(`${first.url}${location}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${FIRST - 1}` },
        body: bytes.subarray(0, FIRST),
      });
      expect(chunk.status).toBe(202);
      expect(chunk.headers.get('range')).toBe(`0-${FIRST - 1}`);

      // The second chunk streams in slowly; once some of it is on disk, the mirror dies mid-body.
      const slow = trickle(`${first.url}${location}`, FIRST, bytes.subarray(FIRST));
      await waitFor('part of the second chunk on disk', async () => ((await stat(sessionFile)).size > FIRST ? true : undefined));
      expect((await first.kill()).signal).toBe('SIGKILL');
      const cut = await slow.settled;
      expect(cut.status, 'the cut PATCH must not have been answered').toBeUndefined();
      expect(slow.sent()).toBeLessThan(bytes.length - FIRST);

      second = await startMirrorProcess(config);
      // Nothing of the unfinished blob is visible.
      const head = await fetch(`${second.url}/v2/lab/x/blobs/${layer.digest}`, { method: 'HEAD' });
      expect(head.status).toBe(404);
      const get = await fetch(`${second.url}/v2/lab/x/blobs/${layer.digest}`);
      expect(get.status).toBe(404);
      expect(await errorCode(get)).toBe('BLOB_UNKNOWN');
      const tags = await fetch(`${second.url}/v2/lab/x/tags/list`);
      expect(tags.status).toBe(404);
      const files = await expectOnlyWholeBlobs(dataDir);
      expect(files.some((f) => f.endsWith(hexOf(layer.digest)))).toBe(false);

      // The session survived: it tells how far it got (at least the acknowledged first chunk).
      const progress = await fetch(`${second.url}${location}`);
      expect(progress.status).toBe(204);
      const range = /^0-(\d+)$/.exec(progress.headers.get('range') ?? '');
      expect(range, `Range: ${progress.headers.get('range')}`).not.toBeNull();
      const offset = Number(range![1]) + 1;
      expect(offset).toBeGreaterThan(FIRST);
      expect(offset).toBeLessThan(bytes.length);
      expect(offset).toBe((await stat(sessionFile)).size);

      // A client that gives up on the session and pushes again succeeds.
      await pushImage(chunked, second, 'lab/x:1');
      const out = join(work, 'chunked-out');
      await skopeoCopy(`docker://${second.host}/lab/x:1`, `oci:${out}:1`, { preserveDigests: true });
      const back = await skopeoInspect(`oci:${out}:1`);
      expect(back.Digest).toBe(chunked.manifestDigest);
      expect(back.Layers).toEqual([layer.digest]);

      // A client that resumes the broken session from the offset it was told finishes it too.
      const rest = await fetch(`${second.url}${location}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${bytes.length - 1}` },
        body: bytes.subarray(offset),
      });
      expect(rest.status).toBe(202);
      expect(rest.headers.get('range')).toBe(`0-${bytes.length - 1}`);
      const done = await fetch(`${second.url}${location}?digest=${layer.digest}`, { method: 'PUT' });
      expect(done.status).toBe(201);
      expect(done.headers.get('docker-content-digest')).toBe(layer.digest);
      const blob = await fetch(`${second.url}/v2/lab/x/blobs/${layer.digest}`);
      expect(blob.status).toBe(200);
      expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(layer.digest);
      expect((await fetch(`${second.url}${location}`)).status).toBe(404);
      await expectOnlyWholeBlobs(dataDir);
    } finally {
      await first?.kill();
      await second?.terminate(5_000);
    }
  }, 60_000);
});

describe('kill -9 between the last blob and the manifest', () => {
  it('shows no tag and lists no repository after the restart; a skopeo retry reuses the blobs and succeeds', async () => {
    const dataDir = join(work, 'half-data');
    const config = { dataDir, hosted: { namespaces: ['lab'] }, upstreams: upstreams() };
    const digests = [halfPushed.configDigest, ...halfPushed.layers.map((l) => l.digest)];
    let first: MirrorProcess | undefined;
    let second: MirrorProcess | undefined;
    try {
      first = await startMirrorProcess(config);
      for (const digest of digests) {
        const res = await fetch(`${first.url}/v2/lab/y/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: await layoutBlob(halfPushed, digest),
        });
        expect(res.status, digest).toBe(201);
      }
      expect((await first.kill()).signal).toBe('SIGKILL');

      second = await startMirrorProcess(config);
      const byTag = await fetch(`${second.url}/v2/lab/y/manifests/1`, { headers: { accept: OCI_MANIFEST } });
      expect(byTag.status).toBe(404);
      expect(await errorCode(byTag)).toBe('MANIFEST_UNKNOWN');
      const byDigest = await fetch(`${second.url}/v2/lab/y/manifests/${halfPushed.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
      expect(byDigest.status).toBe(404);
      expect(await errorCode(byDigest)).toBe('MANIFEST_UNKNOWN');
      expect((await fetch(`${second.url}/v2/lab/y/tags/list`)).status).toBe(404);
      const catalog = (await (await fetch(`${second.url}/v2/_catalog`)).json()) as { repositories: string[] };
      expect(catalog.repositories).not.toContain('lab/y');
      // The blobs that were acknowledged (201) are durable.
      for (const digest of digests) expect((await fetch(`${second.url}/v2/lab/y/blobs/${digest}`, { method: 'HEAD' })).status, digest).toBe(200);
      await expectOnlyWholeBlobs(dataDir);

      await pushImage(halfPushed, second, 'lab/y:1');
      expect((await skopeoInspect(`docker://${second.host}/lab/y:1`)).Digest).toBe(halfPushed.manifestDigest);
      expect(((await (await fetch(`${second.url}/v2/lab/y/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['1']);
      const after = (await (await fetch(`${second.url}/v2/_catalog`)).json()) as { repositories: string[] };
      expect(after.repositories).toContain('lab/y');

      // skopeo found every blob with a HEAD and uploaded none of them again.
      const lines = await waitFor('the access log line of the manifest PUT', async () => {
        const logs = second!.logs();
        return logs.some((l) => l.msg === 'request' && l.method === 'PUT' && String(l.path).startsWith('/v2/lab/y/manifests/')) ? logs : undefined;
      });
      const requests = lines.filter((l) => l.msg === 'request' && String(l.path).startsWith('/v2/lab/y/'));
      for (const digest of digests) {
        expect(requests.some((l) => l.method === 'HEAD' && l.path === `/v2/lab/y/blobs/${digest}` && l.status === 200), `HEAD ${digest}`).toBe(true);
      }
      expect(requests.filter((l) => String(l.path).includes('/blobs/uploads'))).toEqual([]);
    } finally {
      await first?.kill();
      await second?.terminate(5_000);
    }
  }, 60_000);
});

describe('Redis FLUSHALL', () => {
  let redis: RunningRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.dispose();
  });

  const redisCli = (...args: string[]) => runCommand(requireBinary('redis-cli', 'redis-tools'), ['-h', '127.0.0.1', '-p', String(redis.port), ...args]);

  it('loses no hosted tag, before and after a restart', async () => {
    const dataDir = join(work, 'redis-data');
    const config = { dataDir, redis: { url: redis.url }, hosted: { namespaces: ['lab'] }, upstreams: upstreams() };
    let mirror: RunningMirror | undefined = await startMirror(config);
    const pullAndCheck = async (m: RunningMirror, name: string) => {
      const out = join(work, name);
      await skopeoCopy(`docker://${m.host}/lab/flushed:1`, `oci:${out}:1`, { preserveDigests: true });
      const back = await skopeoInspect(`oci:${out}:1`);
      expect(back.Digest).toBe(flushed.manifestDigest);
      expect(back.Layers).toEqual(flushed.layers.map((l) => l.digest));
      const tags = await fetch(`${m.url}/v2/lab/flushed/tags/list`);
      expect(tags.status).toBe(200);
      expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['1']);
      const catalog = (await (await fetch(`${m.url}/v2/_catalog`)).json()) as { repositories: string[] };
      expect(catalog.repositories).toContain('lab/flushed');
    };
    try {
      await pushImage(flushed, mirror, 'lab/flushed:1');
      // Something cached beside it, so Redis really holds the mirror's state before the flush.
      await skopeoCopy(`docker://${mirror.host}/library/up0:v1`, `oci:${join(work, 'redis-cached')}:x`);
      expect(Number((await redisCli('DBSIZE')).stdout.trim())).toBeGreaterThan(0);
      expect((await redisCli('FLUSHALL')).stdout.trim()).toBe('OK');
      expect(Number((await redisCli('DBSIZE')).stdout.trim())).toBe(0);
      await pullAndCheck(mirror, 'redis-after-flush');

      await mirror.stop();
      await redisCli('FLUSHALL');
      mirror = await startMirror(config);
      await pullAndCheck(mirror, 'redis-after-restart');
    } finally {
      await mirror?.stop();
    }
  }, 60_000);
});

describe('eviction and hosted blobs', () => {
  let mirror: RunningMirror | undefined;

  afterAll(async () => {
    await mirror?.stop();
  });

  const metric = async (name: string) => {
    const text = await (await fetch(`${mirror!.url}/metrics`)).text();
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const held = async (digest: string) => (await mirror!.runtime.deps.blobs.stat(digest)) !== undefined;
  const pullUpstream = async (i: number, name: string) => {
    await skopeoCopy(`docker://${mirror!.host}/library/up${i}:v1`, `oci:${join(work, name)}:x`);
    await mirror!.runtime.deps.budget.settled();
  };
  const expectKeptServed = async () => {
    for (const digest of [kept.configDigest, ...kept.layers.map((l) => l.digest)]) {
      const res = await fetch(`${mirror!.url}/v2/lab/keep/blobs/${digest}`);
      expect(res.status, digest).toBe(200);
      expect(sha256(new Uint8Array(await res.arrayBuffer())), digest).toBe(digest);
    }
    const manifestRes = await fetch(`${mirror!.url}/v2/lab/keep/manifests/1`, { headers: { accept: OCI_MANIFEST } });
    expect(manifestRes.status).toBe(200);
    expect(sha256(new Uint8Array(await manifestRes.arrayBuffer()))).toBe(kept.manifestDigest);
  };

  it('evicts cached blobs to stay under budget and never a hosted one, also one that was cache before it was pushed; hosted bytes are counted apart', async () => {
    const config = { dataDir: join(work, 'evict-data'), cache: { maxSize: '3MiB' }, hosted: { namespaces: ['lab'] }, upstreams: upstreams() };
    const MAX = 3 * MiB;
    // The hosted image's first layer is up0's layer: pulled (cached, the least recently used blob) before
    // it is pushed, so only its pin keeps it from being the first one evicted.
    const shared = upstreamImages[0]!.layers[0]!.digest;
    expect(kept.layers[0]!.digest).toBe(shared);

    mirror = await startMirror(config);
    await pullUpstream(0, 'evict-0');
    expect(await held(shared)).toBe(true);
    await pushImage(kept, mirror, 'lab/keep:1');
    const { blobs, manifest } = await sizes(kept);
    expect(blobs).toBeGreaterThan(2 * MiB);
    expect(await metric('ocimirror_hosted_size_bytes')).toBe(blobs + manifest);

    for (let i = 1; i < UPSTREAM_IMAGES; i++) await pullUpstream(i, `evict-${i}`);

    // The cache went far over budget (5 MiB pulled into 3 MiB) and evicted.
    expect(await metric('ocimirror_evictions_total')).toBeGreaterThan(0);
    expect(await held(upstreamImages[1]!.layers[0]!.digest)).toBe(false);
    // up0's config was cached at the same moment as the shared layer: gone, while the layer stays.
    expect(await held(upstreamImages[0]!.configDigest)).toBe(false);
    expect(mirror.runtime.deps.budget.bytes).toBeLessThanOrEqual(MAX);
    expect(await held(shared)).toBe(true);
    await expectKeptServed();
    await skopeoCopy(`docker://${mirror.host}/lab/keep:1`, `oci:${join(work, 'kept-out')}:1`, { preserveDigests: true });
    expect(await metric('ocimirror_hosted_size_bytes')).toBe(blobs + manifest);

    // A restart counts what is on disk again: the hosted bytes apart, and still never evicted.
    await mirror.stop();
    mirror = await startMirror(config);
    await mirror.runtime.deps.budget.settled();
    expect(await metric('ocimirror_hosted_size_bytes')).toBe(blobs + manifest);
    for (let i = 1; i < UPSTREAM_IMAGES; i++) await pullUpstream(i, `evict-again-${i}`);
    expect(await metric('ocimirror_evictions_total')).toBeGreaterThan(0);
    expect(mirror.runtime.deps.budget.bytes).toBeLessThanOrEqual(MAX);
    await expectKeptServed();
  }, 60_000);
});
