// Blob GETs that the upstream answers with a 307 to a CDN on another host (as Docker Hub does, here via
// distribution's redirect storage middleware): the mirror follows them and never sends the upstream's
// Authorization to the other host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startCdn, type Cdn } from '../support/cdn.ts';
import { buildImage, manifestDigestOf, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const PASSWORD = 'redirect-Secret-1';

describe('blob redirects to another host', () => {
  let work: string;
  let cdn: Cdn;
  let registry: RunningRegistry;
  let image: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('redirect-test');
    const dataDir = join(work, 'registry-data');
    cdn = await startCdn(dataDir);
    registry = await startRegistry({ dataDir, auth: { kind: 'htpasswd', username: 'puller', password: PASSWORD }, blobRedirectBaseUrl: cdn.url });
    image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 300_000, seed: 'redirect' }] });
    await pushImage(image, registry, 'library/app:v1', { destCreds: `puller:${PASSWORD}` });
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, credentials: { username: 'puller', password: PASSWORD } }] });
  }, 120_000);

  afterAll(async () => {
    await mirror?.dispose();
    await registry?.dispose();
    await cdn?.stop();
    if (work) await removeTempDir(work);
  });

  it('follows the redirect, verifies the bytes, and keeps the Authorization header to the upstream', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'copy')}:x`);
    expect(await manifestDigestOf(`docker://${mirror.host}/library/app:v1`)).toBe(image.manifestDigest);
    const blobFetches = cdn.requests().filter((r) => r.path.includes('/blobs/'));
    expect(blobFetches.length).toBeGreaterThan(0);
    for (const request of blobFetches) expect(request.headers.authorization).toBeUndefined();
    await registry.settle();
    expect(registry.requests().some((r) => r.path.includes('/blobs/') && r.status === 307)).toBe(true);
  }, 60_000);
});
