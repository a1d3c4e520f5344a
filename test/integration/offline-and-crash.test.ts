// Offline mode serves only what is cached; a mirror killed with SIGKILL mid-download leaves no partial
// blob that its restart would serve, and cleans the leftover temp file at start-up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { errorCode, rawRequest } from '../support/http.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror } from '../support/mirror.ts';
import { startMirrorProcess } from '../support/mirror-process.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let work: string;
let registry: RunningRegistry;
let image: BuiltImage;
let other: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('offline-crash-test');
  registry = await startRegistry();
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 6 * 1024 * 1024, seed: 'offline' }] });
  other = await buildImage(join(work, 'other'), { tag: 'v1', layers: [{ files: { other: '1' } }] });
  await pushImage(image, registry, 'library/app:v1');
  await pushImage(other, registry, 'library/other:v1');
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

describe('offline mode', () => {
  it('serves cached tags regardless of TTL and answers MANIFEST_UNKNOWN / BLOB_UNKNOWN for the rest, without asking upstream', async () => {
    const dataDir = join(work, 'offline-data');
    const upstreams = [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, tagTtl: '1ms' }];
    const online = await startMirror({ dataDir, upstreams });
    await skopeoCopy(`docker://${online.host}/library/app:v1`, `oci:${join(work, 'warm')}:x`);
    await online.stop();

    const offline = await startMirror({ dataDir, upstreams, offline: true });
    try {
      await registry.settle();
      registry.clearRequests();
      await sleep(10);
      await skopeoCopy(`docker://${offline.host}/library/app:v1`, `oci:${join(work, 'offline-copy')}:x`);
      const missingTag = await rawRequest(offline.url, { path: '/v2/library/other/manifests/v1', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(missingTag.status).toBe(404);
      expect(errorCode(missingTag)).toBe('MANIFEST_UNKNOWN');
      const missingBlob = await rawRequest(offline.url, { path: `/v2/library/other/blobs/${other.layers[0]!.digest}` });
      expect(missingBlob.status).toBe(404);
      expect(errorCode(missingBlob)).toBe('BLOB_UNKNOWN');
      await registry.settle();
      expect(registry.requests()).toEqual([]);
    } finally {
      await offline.dispose();
    }
  }, 120_000);
});

describe('kill -9 during a download', () => {
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy(registry.url, { fault: { dripBytesPerSec: 1024 * 1024 } });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('leaves no partial blob behind that a restarted mirror would serve', async () => {
    const dataDir = join(work, 'crash-data');
    const config = { dataDir, upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] };
    const layer = image.layers[0]!;
    const uploads = join(dataDir, 'blobs', '_uploads');

    const first = await startMirrorProcess(config);
    const download = fetch(`${first.url}/v2/library/app/blobs/${layer.digest}`).then((r) => r.arrayBuffer()).catch(() => undefined);
    let partial = 0;
    while (partial === 0) {
      await sleep(50);
      const files = await readdir(uploads).catch(() => []);
      partial = files.length ? (await stat(join(uploads, files[0]!))).size : 0;
    }
    await first.kill();
    await download;
    expect(partial).toBeLessThan(layer.size);
    expect((await readdir(uploads)).length).toBe(1);

    proxy.setFault('none');
    const second = await startMirrorProcess(config);
    try {
      expect(await readdir(uploads)).toEqual([]);
      expect(second.logs().some((l) => l.msg === 'removed unfinished uploads left by an earlier run')).toBe(true);
      const body = Buffer.from(await (await fetch(`${second.url}/v2/library/app/blobs/${layer.digest}`)).arrayBuffer());
      expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(layer.digest);
    } finally {
      await second.terminate();
    }
  }, 120_000);
});
