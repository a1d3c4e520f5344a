// skopeo (and anything else that takes a registry host) names the upstream as a path prefix on the
// mirror: docker://mirror/docker.io/library/alpine:3.8, docker://mirror/ghcr.io/org/app:v1.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, manifestDigestOf, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

let work: string;
let hub: RunningRegistry;
let lab: RunningRegistry;
let content: SeededContent;
let app: BuiltImage;
let mirror: RunningMirror;

beforeAll(async () => {
  work = await makeTempDir('skopeo-client-test');
  [hub, lab] = await Promise.all([startRegistry(), startRegistry()]);
  content = await buildAndPush(hub, work);
  app = await buildImage(join(work, 'app'), { tag: 'v1', layers: [{ files: { app: 'lab\n' } }] });
  await pushImage(app, lab, 'org/app:v1');
  mirror = await startMirror({
    upstreams: [
      { name: 'docker.io', url: hub.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true },
      { name: 'ghcr.io', url: lab.url, aliases: ['ghcr.io'] },
    ],
  });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await Promise.all([hub?.dispose(), lab?.dispose()]);
  if (work) await removeTempDir(work);
});

describe('skopeo through the path prefix', () => {
  it('copies docker://MIRROR/docker.io/library/alpine:3.8 byte for byte', async () => {
    const dest = join(work, 'copied');
    await skopeoCopy(`docker://${mirror.host}/docker.io/library/alpine:3.8`, `oci:${dest}:alpine`, { preserveDigests: true });
    expect(await manifestDigestOf(`oci:${dest}:alpine`)).toBe(content.alpine.manifestDigest);
    const lines = mirror.logs().filter((l) => l.msg === 'request' && l.repo === 'library/alpine');
    expect(lines.map((l) => l.route)).toEqual(expect.arrayContaining(['manifest', 'blob']));
    for (const line of lines) expect(line).toMatchObject({ upstream: 'docker.io', status: 200 });
  }, 60_000);

  it('reaches another upstream by its alias, and the default one without any prefix', async () => {
    expect(await manifestDigestOf(`docker://${mirror.host}/ghcr.io/org/app:v1`)).toBe(app.manifestDigest);
    expect(await manifestDigestOf(`docker://${mirror.host}/library/alpine:3.8`)).toBe(content.alpine.manifestDigest);
    await lab.settle();
    expect(lab.requests().some((r) => r.path === '/v2/org/app/manifests/v1')).toBe(true);
  }, 60_000);
});
