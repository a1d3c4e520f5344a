// Two mirror processes sharing one data dir (and one Redis) are one hosted registry: a push through one
// is pullable through the other at once, and two pushes racing for the same tag through different
// replicas both succeed and leave the tag on exactly one of the two images, complete.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, pushImage, skopeoCopy, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { startMirrorProcess, type MirrorProcess } from '../support/mirror-process.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ROUNDS = 2;

describe('hosted repositories on replicas sharing a data dir', () => {
  let work: string;
  let registry: RunningRegistry;
  let redis: RunningRedis;
  let single: BuiltImage;
  /** Per round, two different images for the same tag; they share a base layer, as images often do. */
  const pairs: Array<[BuiltImage, BuiltImage]> = [];
  const replicas: MirrorProcess[] = [];

  beforeAll(async () => {
    work = await makeTempDir('hosted-replicas-test');
    // The upstream is never asked about hosted names; it is there so that nothing leaves loopback.
    registry = await startRegistry();
    redis = await startRedis();
    single = await buildImage(join(work, 'single'), { tag: '1', layers: [{ randomBytes: 2 * MiB, seed: 'hosted-replicas-single' }] });
    for (let round = 0; round < ROUNDS; round++) {
      const build = (side: string) =>
        buildImage(join(work, `race-${round}-${side}`), {
          tag: '1',
          layers: [
            { randomBytes: 2 * MiB, seed: `hosted-replicas-base-${round}` },
            { randomBytes: MiB, seed: `hosted-replicas-${round}-${side}` },
          ],
        });
      pairs.push([await build('a'), await build('b')]);
    }
    const config = {
      dataDir: join(work, 'shared-data'),
      redis: { url: redis.url },
      hosted: { namespaces: ['lab'] },
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
    };
    replicas.push(await startMirrorProcess(config), await startMirrorProcess(config));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.terminate(5_000)));
    await redis?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  it('serves a push through one replica from the other at once', async () => {
    const [a, b] = replicas as [MirrorProcess, MirrorProcess];
    await pushImage(single, a, 'lab/app:1');
    const inspected = await skopeoInspect(`docker://${b.host}/lab/app:1`);
    expect(inspected.Digest).toBe(single.manifestDigest);
    const out = join(work, 'single-out');
    await skopeoCopy(`docker://${b.host}/lab/app:1`, `oci:${out}:1`, { preserveDigests: true });
    expect((await skopeoInspect(`oci:${out}:1`)).Layers).toEqual(single.layers.map((l) => l.digest));
    expect(((await (await fetch(`${b.url}/v2/lab/app/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['1']);
  }, 60_000);

  it('lets two pushes of different images to one tag through different replicas both succeed, leaving the tag on one complete image', async () => {
    const [a, b] = replicas as [MirrorProcess, MirrorProcess];
    for (const [round, [imageA, imageB]] of pairs.entries()) {
      expect(imageA.manifestDigest).not.toBe(imageB.manifestDigest);
      const pushes = await Promise.allSettled([pushImage(imageA, a, 'lab/race:1'), pushImage(imageB, b, 'lab/race:1')]);
      expect(
        pushes.map((p) => (p.status === 'rejected' ? String(p.reason) : 'ok')),
        `round ${round}`,
      ).toEqual(['ok', 'ok']);

      // Both replicas agree on the winner, which is one of the two.
      const digests = await Promise.all(
        replicas.map(async (replica) => {
          const res = await fetch(`${replica.url}/v2/lab/race/manifests/1`, { headers: { accept: OCI_MANIFEST } });
          expect(res.status).toBe(200);
          const body = new Uint8Array(await res.arrayBuffer());
          expect(res.headers.get('docker-content-digest')).toBe(sha256(body));
          return sha256(body);
        }),
      );
      expect(digests[0], `round ${round}`).toBe(digests[1]);
      const winner = [imageA, imageB].find((image) => image.manifestDigest === digests[0]);
      expect(winner, `round ${round}: the tag points at ${digests[0]}, neither pushed image`).toBeDefined();

      // Its manifest and every blob are whole, through either replica.
      for (const [i, replica] of replicas.entries()) {
        for (const digest of [winner!.configDigest, ...winner!.layers.map((l) => l.digest)]) {
          const res = await fetch(`${replica.url}/v2/lab/race/blobs/${digest}`);
          expect(res.status, digest).toBe(200);
          expect(sha256(new Uint8Array(await res.arrayBuffer())), digest).toBe(digest);
        }
        const out = join(work, `race-${round}-out-${i}`);
        await skopeoCopy(`docker://${replica.host}/lab/race:1`, `oci:${out}:1`, { preserveDigests: true });
        const back = await skopeoInspect(`oci:${out}:1`);
        expect(back.Digest).toBe(winner!.manifestDigest);
        expect(back.Layers).toEqual(winner!.layers.map((l) => l.digest));
        expect(((await (await fetch(`${replica.url}/v2/lab/race/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['1']);
      }
      // The loser's manifest was accepted too (201): it stays reachable by digest.
      const loser = winner === imageA ? imageB : imageA;
      for (const replica of replicas) {
        const res = await fetch(`${replica.url}/v2/lab/race/manifests/${loser.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
        expect(res.status).toBe(200);
        expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(loser.manifestDigest);
      }
    }
  }, 60_000);
});
