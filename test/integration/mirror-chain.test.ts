// Mirrors in a row: a site mirror in front of a regional one is a supported set-up, and two mirrors
// that name each other as upstream (A -> B -> A, a configuration mistake) must fail at once with 508
// instead of bouncing requests until sockets and timeouts run out. Upstream requests keep the Via hops
// of the client request they serve, so the request that comes back is recognised.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildImage, manifestDigestOf, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

function requestLines(mirror: RunningMirror): Record<string, unknown>[] {
  return mirror.logs().filter((l) => l.msg === 'request');
}

describe('mirrors in a chain', () => {
  let work: string;
  let registry: RunningRegistry;
  let image: BuiltImage;
  let site: RunningMirror;
  let regional: RunningMirror;
  let loopA: RunningMirror;
  let loopB: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('mirror-chain-test');
    registry = await startRegistry();
    image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 2 * 1024 * 1024, seed: 'chain' }, { files: { c: '1' } }] });
    await pushImage(image, registry, 'library/app:v1');
    regional = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, default: true }] });
    site = await startMirror({ upstreams: [{ name: 'docker.io', url: regional.url, default: true }] });
    // Two mirrors that name each other: their ports are chosen before either starts.
    const [portA, portB] = await Promise.all([freePort(), freePort()]);
    loopA = await startMirror({ listen: `127.0.0.1:${portA}`, upstreams: [{ name: 'docker.io', url: `http://127.0.0.1:${portB}`, default: true }] });
    loopB = await startMirror({ listen: `127.0.0.1:${portB}`, upstreams: [{ name: 'docker.io', url: `http://127.0.0.1:${portA}`, default: true }] });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([site?.dispose(), regional?.dispose(), loopA?.dispose(), loopB?.dispose()]);
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  it('a mirror in front of another mirror pulls through both', async () => {
    await skopeoCopy(`docker://${site.host}/library/app:v1`, `oci:${join(work, 'copy')}:x`);
    expect(await manifestDigestOf(`docker://${site.host}/library/app:v1`)).toBe(image.manifestDigest);
    expect(requestLines(regional).some((l) => String(l.path).includes('/blobs/') && l.status === 200)).toBe(true);
  }, 60_000);

  it('two mirrors that are each other’s upstream answer 508 at once, each request handled once', async () => {
    const res = await rawRequest(loopA.url, { path: '/v2/library/app/manifests/v1', headers: { accept: ACCEPT } });
    expect(res.status).toBe(508);
    expect(JSON.parse(res.body.toString()).errors[0]).toMatchObject({ code: 'UNAVAILABLE' });
    expect(res.body.toString()).toContain('proxy loop');
    // No retries and no second round: A saw the client's request and the one that came back through B;
    // B saw one.
    expect(requestLines(loopA).map((l) => l.status)).toEqual([508, 508]);
    expect(requestLines(loopB).map((l) => l.status)).toEqual([508]);
    const blob = await rawRequest(loopB.url, { path: `/v2/library/app/blobs/${image.layers[0]!.digest}` });
    expect(blob.status).toBe(508);
  });
});
