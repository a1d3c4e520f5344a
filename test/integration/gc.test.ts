// Online garbage collection: exactly the blobs nothing references any more are freed (counted and sized),
// fresh uploads survive their grace time, and a collection running during pulls and pushes fails none.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocimirrorOk, runOcimirror } from '../support/cli.ts';
import { hostname } from 'node:os';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { blobPath } from '../support/oci-layout.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KiB = 1024;

let work: string;
let registry: RunningRegistry;
let upstreamImage: BuiltImage;
const mirrors: RunningMirror[] = [];

beforeAll(async () => {
  work = await makeTempDir('gc-test');
  registry = await startRegistry();
  upstreamImage = await buildImage(join(work, 'upstream'), { tag: '1', layers: [{ randomBytes: 64 * KiB, seed: 'gc-upstream' }] });
  await pushImage(upstreamImage, registry, 'library/cached:1');
}, 300_000);

afterAll(async () => {
  for (const m of mirrors) await m.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

async function mirrorWith(grace: string): Promise<RunningMirror> {
  const mirror = await startMirror({
    hosted: { namespaces: ['lab'] },
    gc: { grace, interval: 0 },
    upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
  });
  mirrors.push(mirror);
  return mirror;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const sizeOf = (image: BuiltImage, digests: string[]) => Promise.all(digests.map(async (d) => (await readFile(blobPath(image.layoutDir, d))).length)).then((s) => s.reduce((a, b) => a + b, 0));

/** Pulls an image by tag as a client would and checks every byte against its digest; returns failures. */
async function pullAndVerify(base: string, name: string, tag: string): Promise<string[]> {
  const failures: string[] = [];
  const res = await fetch(`${base}/v2/${name}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  if (res.status !== 200) return [`${name}:${tag} manifest ${res.status}`];
  const manifest = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const { digest } of [manifest.config, ...manifest.layers]) {
    const blob = await fetch(`${base}/v2/${name}/blobs/${digest}`);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    if (blob.status !== 200 || sha256(bytes) !== digest) failures.push(`${name} blob ${digest} ${blob.status}`);
  }
  return failures;
}

describe('ocimirror gc', () => {
  it('frees exactly the blobs only a deleted image used, reports them, and keeps what others use', async () => {
    const mirror = await mirrorWith('0s');
    const shared = { randomBytes: 32 * KiB, seed: 'gc-shared' };
    const a = await buildImage(join(work, 'a'), { tag: 'a', layers: [shared, { randomBytes: 48 * KiB, seed: 'gc-only-a' }] });
    const b = await buildImage(join(work, 'b'), { tag: 'b', layers: [shared, { randomBytes: 40 * KiB, seed: 'gc-only-b' }] });
    await skopeoCopy(a.ociRef, `docker://${mirror.host}/lab/app:a`);
    await skopeoCopy(b.ociRef, `docker://${mirror.host}/lab/app:b`);
    // Something cached from the upstream too: gc must not take it.
    expect(await pullAndVerify(mirror.url, 'library/cached', '1')).toEqual([]);
    expect((await fetch(`${mirror.url}/v2/lab/app/manifests/${a.manifestDigest}`, { method: 'DELETE' })).status).toBe(202);

    const onlyA = [a.manifestDigest, a.configDigest, a.layers[1]!.digest];
    const bytes = await sizeOf(a, onlyA);
    const dry = JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--dry-run', '--json'])).stdout) as Record<string, number | boolean>;
    expect(dry).toMatchObject({ dryRun: true, freedObjects: 3, freedBytes: bytes, linksRemoved: 2 });
    for (const d of onlyA) expect(await mirror.runtime.deps.blobs.stat(d), d).toBeDefined();

    const run = await ocimirrorOk(['gc', '--admin', mirror.adminUrl!]);
    expect(run.stdout).toMatch(/^gc: freed 3 blobs and manifests, .*; 0 hosted manifests and 2 blob links removed/m);
    for (const d of onlyA) expect(await mirror.runtime.deps.blobs.stat(d), d).toBeUndefined();
    expect(await pullAndVerify(mirror.url, 'lab/app', 'b')).toEqual([]);
    expect(await pullAndVerify(mirror.url, 'library/cached', '1')).toEqual([]);
    const metrics = await (await fetch(`${mirror.url}/metrics`)).text();
    expect(metrics).toMatch(/^ocimirror_gc_freed_objects_total 3$/m);
    expect(metrics).toMatch(new RegExp(`^ocimirror_gc_freed_bytes_total ${bytes}$`, 'm'));
    expect(mirror.logs().some((l) => l.msg === 'garbage collection finished' && l.freed_objects === 3 && l.freed_bytes === bytes)).toBe(true);

    // A second run finds nothing more.
    const again = JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--json'])).stdout) as Record<string, number>;
    expect(again.freedObjects).toBe(0);
  });

  it('keeps untagged hosted manifests unless --delete-untagged', async () => {
    const mirror = await mirrorWith('0s');
    const first = await buildImage(join(work, 'v1'), { tag: 'v', layers: [{ randomBytes: 16 * KiB, seed: 'gc-v1' }] });
    const second = await buildImage(join(work, 'v2'), { tag: 'v', layers: [{ randomBytes: 16 * KiB, seed: 'gc-v2' }] });
    await skopeoCopy(first.ociRef, `docker://${mirror.host}/lab/moving:v`);
    await skopeoCopy(second.ociRef, `docker://${mirror.host}/lab/moving:v`);
    const kept = JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--json'])).stdout) as Record<string, number>;
    expect(kept.freedObjects).toBe(0);
    expect((await fetch(`${mirror.url}/v2/lab/moving/manifests/${first.manifestDigest}`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
    const untagged = JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--delete-untagged', '--json'])).stdout) as Record<string, number>;
    expect(untagged).toMatchObject({ manifestsRemoved: 1, freedObjects: 3 });
    expect((await fetch(`${mirror.url}/v2/lab/moving/manifests/${first.manifestDigest}`, { headers: { accept: OCI_MANIFEST } })).status).toBe(404);
    expect(await pullAndVerify(mirror.url, 'lab/moving', 'v')).toEqual([]);
  });

  it('spares a push whose blobs are uploaded but whose manifest is not yet put, within the grace time', async () => {
    const mirror = await mirrorWith('1h');
    const image = await buildImage(join(work, 'slow'), { tag: '1', layers: [{ randomBytes: 24 * KiB, seed: 'gc-slow' }] });
    for (const digest of [image.configDigest, image.layers[0]!.digest]) {
      const bytes = await readFile(blobPath(image.layoutDir, digest));
      expect((await fetch(`${mirror.url}/v2/lab/slow/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })).status).toBe(201);
    }
    const report = JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--json'])).stdout) as Record<string, number>;
    expect(report.freedObjects).toBe(0);
    const manifest = await readFile(blobPath(image.layoutDir, image.manifestDigest));
    const put = await fetch(`${mirror.url}/v2/lab/slow/manifests/1`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(put.status).toBe(201);
    expect(await pullAndVerify(mirror.url, 'lab/slow', '1')).toEqual([]);
  });

  it('runs by itself every gc.interval', async () => {
    const mirror = await startMirror({ hosted: { namespaces: ['lab'] }, gc: { grace: '0s', interval: '1s' }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    mirrors.push(mirror);
    const image = await buildImage(join(work, 'scheduled'), { tag: '1', layers: [{ randomBytes: 8 * KiB, seed: 'gc-scheduled' }] });
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/scheduled:1`);
    expect((await fetch(`${mirror.url}/v2/lab/scheduled/manifests/${image.manifestDigest}`, { method: 'DELETE' })).status).toBe(202);
    const deadline = Date.now() + 15_000;
    while ((await mirror.runtime.deps.blobs.stat(image.layers[0]!.digest)) && Date.now() < deadline) await sleep(200);
    expect(await mirror.runtime.deps.blobs.stat(image.layers[0]!.digest)).toBeUndefined();
    expect(mirror.logs().some((l) => l.msg === 'garbage collection finished')).toBe(true);
  });

  it('runs once at a time: a run while another replica holds the data dir\'s lock is refused (409)', async () => {
    const mirror = await mirrorWith('1h');
    // Another live process on this host holds the lock: this test's own process stands in for it.
    await writeFile(join(mirror.config.dataDir, 'gc.lock'), JSON.stringify({ host: hostname(), pid: process.pid }));
    const busy = await fetch(`${mirror.adminUrl}/_ocimirror/gc`, { method: 'POST' });
    expect(busy.status).toBe(409);
    const cli = await runOcimirror(['gc', '--admin', mirror.adminUrl!]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('already running');
    await rm(join(mirror.config.dataDir, 'gc.lock'));
    expect((await fetch(`${mirror.adminUrl}/_ocimirror/gc`, { method: 'POST' })).status).toBe(200);
  });

  it('runs during 20 concurrent pulls and 2 pushes without a failed request or a missing blob', async () => {
    const mirror = await mirrorWith('3s');
    const served: BuiltImage[] = [];
    for (let i = 0; i < 3; i++) {
      const image = await buildImage(join(work, `served-${i}`), { tag: '1', layers: [{ randomBytes: 256 * KiB, seed: `gc-served-${i}` }] });
      await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/served-${i}:1`);
      served.push(image);
    }
    // Garbage that the runs below will free while the clients work.
    const garbage = await buildImage(join(work, 'garbage'), { tag: '1', layers: [{ randomBytes: 128 * KiB, seed: 'gc-garbage' }] });
    await skopeoCopy(garbage.ociRef, `docker://${mirror.host}/lab/garbage:1`);
    expect((await fetch(`${mirror.url}/v2/lab/garbage/manifests/${garbage.manifestDigest}`, { method: 'DELETE' })).status).toBe(202);
    await sleep(3_500);

    const failures: string[] = [];
    let done = false;
    const pullers = Array.from({ length: 20 }, async (_, i) => {
      let rounds = 0;
      while (!done || rounds < 2) {
        const which = (i + rounds) % 4;
        failures.push(...(which === 3 ? await pullAndVerify(mirror.url, 'library/cached', '1') : await pullAndVerify(mirror.url, `lab/served-${which}`, '1')));
        rounds++;
      }
    });
    const pushed = await Promise.all(
      [0, 1].map(async (i) => {
        const image = await buildImage(join(work, `pushed-${i}`), { tag: '1', layers: [{ randomBytes: 512 * KiB, seed: `gc-pushed-${i}` }, { randomBytes: 64 * KiB, seed: 'gc-served-0-shared' }] });
        await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/pushed-${i}:1`);
        return image;
      }),
    );
    const reports: Record<string, number>[] = [];
    for (let i = 0; i < 3; i++) reports.push(JSON.parse((await ocimirrorOk(['gc', '--admin', mirror.adminUrl!, '--json'])).stdout) as Record<string, number>);
    done = true;
    await Promise.all(pullers);
    expect(failures).toEqual([]);
    expect(reports.reduce((n, r) => n + r.freedObjects!, 0)).toBe(3);
    for (const [i] of pushed.entries()) expect(await pullAndVerify(mirror.url, `lab/pushed-${i}`, '1')).toEqual([]);
    expect(mirror.logs().filter((l) => l.msg === 'request' && Number(l.status) >= 500)).toEqual([]);
  }, 180_000);
});
