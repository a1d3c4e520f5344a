// The operator cache tools, run as real `ocimirror` processes against a running mirror: warm pulls whole
// images through the public API (a second warm comes from disk), ls and inspect show what is cached,
// rm frees exactly the blobs only the removed image used. The admin API lives on its own listener only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOcimirror, type CliResult } from '../support/cli.ts';
import { blobPath } from '../support/oci-layout.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startMirrorProcess } from '../support/mirror-process.ts';
import { freePort } from '../support/ports.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { setUpStore, type StoreSetup } from '../support/store-kinds.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { blobGets, buildAndPush, type SeededContent } from '../support/upstream-content.ts';
import { digestsOnDisk, imageDigests } from '../support/data-dir.ts';

/** `ocimirror <args>` as its own process. */
function ocimirror(...args: string[]): Promise<CliResult> {
  return runOcimirror(args);
}

/** Like ocimirror(), but expects exit code 0 and parses stdout as JSON. */
async function ocimirrorJson<T>(...args: string[]): Promise<T> {
  const result = await ocimirror(...args, '--json');
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}


/** Every digest of a built single-platform image: manifest, config, layers. */

interface WarmSummary {
  warmed: number;
  failed: number;
  manifests: { cache: { count: number }; upstream: { count: number } };
  blobs: { cache: { count: number; bytes: number }; upstream: { count: number; bytes: number } };
  images: { image: string; ok: boolean; error?: string; digest?: string }[];
}

let work: string;
let registry: RunningRegistry;
let content: SeededContent;
/** shared/a:1 and shared/b:1 share their first layer. */
let a: BuiltImage;
let b: BuiltImage;
/** pinned/d:1 and pinned/e:1 share their first layer; e is only ever pulled by digest. */
let d: BuiltImage;
let e: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('cache-tools-test');
  registry = await startRegistry();
  content = await buildAndPush(registry, work);
  const shared = { randomBytes: 48 * 1024, seed: 'cache-tools-shared' };
  a = await buildImage(join(work, 'a'), { tag: '1', layers: [shared, { files: { 'a.txt': 'only in a\n' } }] });
  b = await buildImage(join(work, 'b'), { tag: '1', layers: [shared, { files: { 'b.txt': 'only in b\n' } }] });
  const pinned = { randomBytes: 40 * 1024, seed: 'cache-tools-pinned' };
  d = await buildImage(join(work, 'd'), { tag: '1', layers: [pinned, { files: { 'd.txt': 'only in d\n' } }] });
  e = await buildImage(join(work, 'e'), { tag: '1', layers: [pinned, { files: { 'e.txt': 'only in e\n' } }] });
  await pushImage(a, registry, 'shared/a:1');
  await pushImage(b, registry, 'shared/b:1');
  await pushImage(d, registry, 'pinned/d:1');
  await pushImage(e, registry, 'pinned/e:1');
  expect(a.layers[0]!.digest).toBe(b.layers[0]!.digest);
  expect(d.layers[0]!.digest).toBe(e.layers[0]!.digest);
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

/** The mirror table of these tests: the registry as docker.io (default) and, by a second name, as ghcr.io. */
function upstreams(url: string) {
  return [
    { name: 'docker.io', url, aliases: ['docker.io', 'registry-1.docker.io'], default: true, tagTtl: '10m' },
    { name: 'ghcr.io', url, aliases: ['ghcr.io'], tagTtl: '10m' },
  ];
}

describe('ocimirror warm, ls, inspect, rm against a running mirror (embedded metadata store)', () => {
  let mirror: RunningMirror;
  let admin: string;
  const images = () => [
    'alpine:3.8',
    'docker.io/library/multi:1',
    'ghcr.io/library/multi:1',
    `${content.dockerRepo}:1`,
    'shared/a:1',
    'docker.io/shared/b:1',
    'pinned/d:1',
    `pinned/e@${e.manifestDigest}`,
  ];

  beforeAll(async () => {
    mirror = await startMirror({ upstreams: upstreams(registry.url) });
    admin = mirror.adminUrl!;
  }, 60_000);

  afterAll(async () => {
    await mirror?.dispose();
  });

  it('warm pulls every platform manifest, config and layer through the mirror', async () => {
    await registry.settle();
    registry.clearRequests();
    const result = await ocimirror('warm', '--server', mirror.url, '--json', ...images());
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as WarmSummary;
    expect(summary.failed).toBe(0);
    expect(summary.warmed).toBe(images().length);
    expect(summary.blobs.cache.count).toBe(0);
    expect(summary.blobs.upstream.count).toBeGreaterThan(0);
    expect(summary.images.find((i) => i.image === 'docker.io/library/multi:1')?.digest).toBe(content.multi.indexDigest);
    // Not a TTY: one plain line per step on stderr.
    expect(result.stderr).toContain('alpine:3.8: resolving');
    expect(result.stderr).toMatch(/shared\/a:1: sha256:[0-9a-f]{12}, 3 blobs/);

    const onDisk = await digestsOnDisk(mirror.config.dataDir);
    const expected = [
      ...imageDigests(content.alpine),
      content.multi.indexDigest,
      ...content.multi.manifests.flatMap((m) => [m.manifestDigest, m.configDigest, ...m.layers.map((l) => l.digest)]),
      ...imageDigests(a),
      ...imageDigests(b),
      ...imageDigests(d),
      ...imageDigests(e),
    ];
    expect(expected.filter((digest) => !onDisk.has(digest))).toEqual([]);
    await registry.settle();
    expect(blobGets(registry)).toBe(summary.blobs.upstream.count);
  }, 180_000);

  it('a second warm is answered from the cache: the upstream sees no blob request', async () => {
    await registry.settle();
    registry.clearRequests();
    const summary = await ocimirrorJson<WarmSummary>('warm', '--server', mirror.url, ...images());
    expect(summary.failed).toBe(0);
    expect(summary.blobs.upstream.count).toBe(0);
    expect(summary.blobs.cache.count).toBeGreaterThan(0);
    expect(summary.manifests.upstream.count).toBe(0);
    await registry.settle();
    expect(blobGets(registry)).toBe(0);
  }, 120_000);

  it('warm reads a list file, reports a failed image, warms the others and exits 1', async () => {
    const list = join(work, 'images.txt');
    await writeFile(list, '# lab images\nalpine:3.8\n\nnosuch/image:1  # not upstream\n');
    const result = await ocimirror('warm', '--server', mirror.url, '--file', list);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nosuch\/image:1: FAILED: manifest 1: the mirror answered 404/);
    expect(result.stdout).toMatch(/warmed 1 of 2 images .* \(1 failed\)/);
    const bad = await ocimirror('warm', '--server', mirror.url, 'Not/An:Image:');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a valid tag|repository name/);
  }, 60_000);

  it('ls lists the cached repositories, and a repository its tags with digest and size on disk', async () => {
    const table = await ocimirror('ls', '--admin', admin);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^REPOSITORY\s+UPSTREAM\s+TAGS$/m);
    expect(table.stdout).toMatch(/^library\/alpine\s+docker\.io\s+1$/m);
    expect(table.stdout).toMatch(/^ghcr\.io\/library\/multi\s+ghcr\.io\s+1$/m);

    const { repositories } = await ocimirrorJson<{ repositories: { name: string; upstream: string; repo: string; tags: number }[] }>('ls', '--admin', admin);
    expect(repositories.map((r) => r.name)).toEqual(
      expect.arrayContaining(['library/alpine', 'library/multi', 'ghcr.io/library/multi', 'library/docker2', 'shared/a', 'shared/b', 'pinned/d']),
    );
    // pinned/e was only pulled by digest: no tag, so not a cached repository.
    expect(repositories.map((r) => r.name)).not.toContain('pinned/e');

    const detail = await ocimirrorJson<{ tags: { tag: string; manifests: { digest: string }[]; sizeBytes: number; missingBlobs: number; lastAccess?: number }[] }>(
      'ls', '--admin', admin, 'alpine',
    );
    expect(detail.tags.map((t) => t.tag)).toEqual(['3.8']);
    const tag = detail.tags[0]!;
    expect(tag.manifests.map((m) => m.digest)).toEqual([content.alpine.manifestDigest]);
    const configSize = (await stat(blobPath(content.alpine.layoutDir, content.alpine.configDigest))).size;
    expect(tag.sizeBytes).toBe(content.alpine.manifestSize + configSize + content.alpine.layers.reduce((n, l) => n + l.size, 0));
    expect(tag.missingBlobs).toBe(0);
    expect(tag.lastAccess).toBeGreaterThan(Date.now() - 600_000);

    const tags = await ocimirror('ls', '--admin', admin, 'docker.io/library/multi');
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout).toMatch(new RegExp(`^1\\s+${content.multi.indexDigest.slice(0, 19)}\\s+oci index\\s+`, 'm'));
  }, 60_000);

  it('inspect shows a cached manifest with its config, and an index with its platforms', async () => {
    const image = await ocimirrorJson<{
      digest: string;
      platform: { os: string; architecture: string };
      manifest: { layers: unknown[] };
      config: { rootfs: { diff_ids: string[] } };
      layers: { digest: string; held: boolean }[];
    }>('inspect', '--admin', admin, 'docker.io/library/alpine:3.8');
    expect(image.digest).toBe(content.alpine.manifestDigest);
    expect(image.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(image.manifest.layers).toHaveLength(3);
    expect(image.config.rootfs.diff_ids).toEqual(content.alpine.layers.map((l) => l.diffId));
    expect(image.layers.every((l) => l.held)).toBe(true);

    const text = await ocimirror('inspect', '--admin', admin, 'alpine:3.8');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`Digest:       ${content.alpine.manifestDigest}`);
    expect(text.stdout).toMatch(/Layers:\s+3, .* \(all cached\)/);

    const index = await ocimirror('inspect', '--admin', admin, 'ghcr.io/library/multi:1');
    expect(index.code, index.stderr).toBe(0);
    for (const m of content.multi.manifests) expect(index.stdout).toMatch(new RegExp(`linux/${m.platform.architecture}\\s+${m.manifestDigest}\\s+oci image\\s+yes`));

    const arm = await ocimirrorJson<{ digest: string; platform: { architecture: string } }>('inspect', '--admin', admin, '--platform', 'linux/arm64', 'multi:1');
    expect(arm.digest).toBe(content.multi.manifests.find((m) => m.platform.architecture === 'arm64')!.manifestDigest);
    expect(arm.platform.architecture).toBe('arm64');

    const config = await ocimirror('inspect', '--admin', admin, '--image-config', `pinned/e@${e.manifestDigest}`);
    expect(config.code, config.stderr).toBe(0);
    expect((JSON.parse(config.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids).toEqual(e.layers.map((l) => l.diffId));

    const unknown = await ocimirror('inspect', '--admin', admin, 'alpine:9.9');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('tag is not cached (MANIFEST_UNKNOWN)');
  }, 60_000);

  it('rm frees exactly the blobs only that image used: shared layers and other images stay', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    const onlyA = [a.manifestDigest, a.configDigest, a.layers[1]!.digest];

    const dry = await ocimirror('rm', '--admin', admin, '--dry-run', 'shared/a:1');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/docker\.io\/shared\/a:1: would free 3 blobs/);
    expect(await digestsOnDisk(mirror.config.dataDir)).toEqual(before);

    const storeBytes = async () => Number(/^ocimirror_blob_store_size_bytes (\d+)$/m.exec(await (await fetch(`${mirror.url}/metrics`)).text())?.[1]);
    const bytesBefore = await storeBytes();
    const [removed] = await ocimirrorJson<{ freed: { digest: string; size: number }[]; freedBytes: number; shared: number }[]>('rm', '--admin', admin, 'shared/a:1');
    expect(removed!.freed.map((f) => f.digest).sort()).toEqual([...onlyA].sort());
    expect(removed!.shared).toBe(1);
    const sizes = await Promise.all(onlyA.map(async (digest) => (await stat(blobPath(a.layoutDir, digest))).size));
    expect(removed!.freedBytes).toBe(sizes.reduce((n, s) => n + s, 0));
    expect(await storeBytes()).toBe(bytesBefore - removed!.freedBytes);

    const after = await digestsOnDisk(mirror.config.dataDir);
    expect([...before].filter((digest) => !after.has(digest)).sort()).toEqual([...onlyA].sort());
    expect([...after].filter((digest) => !before.has(digest))).toEqual([]);
    for (const digest of imageDigests(b)) expect(after.has(digest)).toBe(true);

    const gone = await ocimirror('ls', '--admin', admin, 'shared/a');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('repository is not cached');
    const catalog = (await (await fetch(`${mirror.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).not.toContain('shared/a');
    expect(catalog.repositories).toContain('shared/b');

    // b still pulls completely from the cache.
    await registry.settle();
    registry.clearRequests();
    const again = await ocimirrorJson<WarmSummary>('warm', '--server', mirror.url, 'shared/b:1');
    expect(again.blobs.upstream.count).toBe(0);
    await registry.settle();
    expect(blobGets(registry)).toBe(0);

    const twice = await ocimirror('rm', '--admin', admin, 'shared/a:1');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('tag is not cached');
  }, 60_000);

  it('rm keeps the layers of an image that was pulled only by digest', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    const result = await ocimirror('rm', '--admin', admin, 'pinned/d:1');
    expect(result.code, result.stderr).toBe(0);
    const after = await digestsOnDisk(mirror.config.dataDir);
    expect([...before].filter((digest) => !after.has(digest)).sort()).toEqual([d.manifestDigest, d.configDigest, d.layers[1]!.digest].sort());
    for (const digest of imageDigests(e)) expect(after.has(digest)).toBe(true);
  }, 60_000);

  it('rm of a multi-arch tag keeps what another cached tag shares, then frees the index, platforms and blobs', async () => {
    const all = [content.multi.indexDigest, ...content.multi.manifests.flatMap((m) => [m.manifestDigest, m.configDigest, ...m.layers.map((l) => l.digest)])];
    const before = await digestsOnDisk(mirror.config.dataDir);
    // docker.io/library/multi:1 and ghcr.io/library/multi:1 are the same image: removing one frees nothing.
    const first = await ocimirrorJson<{ freed: unknown[]; shared: number }[]>('rm', '--admin', admin, 'multi:1');
    expect(first[0]!.freed).toEqual([]);
    expect(first[0]!.shared).toBe(all.length);
    expect(await digestsOnDisk(mirror.config.dataDir)).toEqual(before);
    const second = await ocimirrorJson<{ freed: { digest: string }[] }[]>('rm', '--admin', admin, 'ghcr.io/library/multi:1');
    expect(second[0]!.freed.map((f) => f.digest).sort()).toEqual([...all].sort());
    const after = await digestsOnDisk(mirror.config.dataDir);
    expect([...before].filter((digest) => !after.has(digest)).sort()).toEqual([...all].sort());
  }, 60_000);

  it('serves the catalog with paging and tags/list from the cache while the upstream is down', async () => {
    const catalog = (await (await fetch(`${mirror.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(expect.arrayContaining(['library/alpine', 'library/docker2', 'shared/b']));
    const page = await fetch(`${mirror.url}/v2/_catalog?n=1`);
    expect(((await page.json()) as { repositories: string[] }).repositories).toHaveLength(1);
    expect(page.headers.get('link')).toMatch(/^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);

    await registry.stop();
    try {
      const res = await fetch(`${mirror.url}/v2/library/alpine/tags/list`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { tags: string[] }).tags).toEqual(['3.8']);
      const shared = await fetch(`${mirror.url}/v2/shared/b/tags/list`);
      expect(((await shared.json()) as { tags: string[] }).tags).toEqual(['1']);
    } finally {
      await registry.start();
    }
  }, 60_000);

  it('reports an admin API it cannot reach', async () => {
    const result = await ocimirror('ls', '--admin', `http://127.0.0.1:${await freePort()}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot reach the mirror's admin API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});

describe('the admin API listener', () => {
  it('is served by `ocimirror serve` on admin.listen only, never on the public listener', async () => {
    const adminPort = await freePort();
    const dataDir = await makeTempDir('cache-tools-serve');
    const served = await startMirrorProcess({ dataDir, admin: { listen: `127.0.0.1:${adminPort}` }, upstreams: upstreams(registry.url) });
    try {
      const warm = await ocimirror('warm', '--server', served.url, 'alpine:3.8');
      expect(warm.code, warm.stderr).toBe(0);
      const ls = await ocimirror('ls', '--admin', `http://127.0.0.1:${adminPort}`);
      expect(ls.stdout).toMatch(/^library\/alpine\s+docker\.io\s+1$/m);
      for (const method of ['GET', 'DELETE']) {
        const res = await fetch(`${served.url}/_ocimirror/images/library/alpine:3.8`, { method });
        expect(res.status, method).toBe(404);
        await res.arrayBuffer();
      }
      const listed = await fetch(`${served.url}/_ocimirror/repositories`);
      expect(listed.status).toBe(404);
      await listed.arrayBuffer();
      expect(served.logs().find((l) => l.msg === 'ocimirror listening')?.admin).toEqual([`127.0.0.1:${adminPort}`]);
      // Still cached: nothing on the public side removed it.
      expect((await ocimirror('inspect', '--admin', `http://127.0.0.1:${adminPort}`, 'alpine:3.8')).code).toBe(0);
    } finally {
      await served.terminate();
      await removeTempDir(dataDir);
    }
  }, 120_000);

  it('is off with admin: false', async () => {
    const mirror = await startMirror({ admin: false, upstreams: upstreams(registry.url) });
    try {
      expect(mirror.adminUrl).toBeUndefined();
    } finally {
      await mirror.dispose();
    }
  });
});

describe('rm with the redis metadata store', () => {
  let store: StoreSetup;
  let mirror: RunningMirror;

  beforeAll(async () => {
    store = await setUpStore('redis');
    mirror = await startMirror({ ...store.config, upstreams: upstreams(registry.url) });
  }, 60_000);

  afterAll(async () => {
    await mirror?.dispose();
    await store?.dispose();
  });

  it('frees exactly the blobs only the removed image used', async () => {
    const warm = await ocimirror('warm', '--server', mirror.url, 'shared/a:1', 'shared/b:1', 'pinned/d:1', `pinned/e@${e.manifestDigest}`);
    expect(warm.code, warm.stderr).toBe(0);
    const before = await digestsOnDisk(mirror.config.dataDir);
    const res = await fetch(`${mirror.adminUrl}/_ocimirror/images/docker.io/shared/b:1`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    const removed = (await res.json()) as { freed: { digest: string }[] };
    const onlyB = [b.manifestDigest, b.configDigest, b.layers[1]!.digest].sort();
    expect(removed.freed.map((f) => f.digest).sort()).toEqual(onlyB);
    const after = await digestsOnDisk(mirror.config.dataDir);
    expect([...before].filter((digest) => !after.has(digest)).sort()).toEqual(onlyB);
    expect(after.has(a.layers[0]!.digest)).toBe(true);

    const rmD = await ocimirror('rm', '--admin', mirror.adminUrl!, 'pinned/d:1');
    expect(rmD.code, rmD.stderr).toBe(0);
    expect(existsSync(join(mirror.config.dataDir, 'blobs', 'sha256', e.layers[0]!.digest.slice(7, 9), e.layers[0]!.digest.slice(7)))).toBe(true);

    const repos = await ocimirrorJson<{ repositories: { name: string }[] }>('ls', '--admin', mirror.adminUrl!);
    expect(repos.repositories.map((r) => r.name)).toEqual(['shared/a']);
  }, 120_000);
});
