// `ocimirror config podman --fallback`: what a real podman (containers/image, as cri-o) does with the
// generated registries.conf when the mirror is up, and when it is down. The upstream is a registry on
// loopback standing in for a lab's private one: `upstream` falls back to it, `none` to nothing — never
// to the public registry the image is named after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ocimirrorOk } from '../support/cli.ts';
import { buildImage, pushImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let configFile: string;
const podmans: Podman[] = [];

beforeAll(async () => {
  work = await makeTempDir('cli-polish-clients');
  registry = await startRegistry();
  for (const tag of ['1', '2', '3', '4']) {
    const image = await buildImage(join(work, `img-${tag}`), { tag, layers: [{ files: { tag: `${tag}\n` } }] });
    await pushImage(image, registry, `library/tool:${tag}`);
  }
  const upstreams = [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }];
  configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify({ upstreams }));
  mirror = await startMirror({ upstreams });
}, 300_000);

afterAll(async () => {
  for (const podman of podmans) await podman.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

async function podmanWith(fallback: 'upstream' | 'none'): Promise<{ podman: Podman; conf: string }> {
  const out = join(work, `conf-${fallback}`);
  await ocimirrorOk(['config', 'podman', '--config', configFile, '--endpoint', mirror.url, '--fallback', fallback, '--write', out]);
  const conf = await readFile(join(out, 'registries.conf'), 'utf8');
  const podman = await createPodman(join(out, 'registries.conf'));
  podmans.push(podman);
  return { podman, conf };
}

/** Requests for library/tool that reached the registry itself. */
async function registryHits(): Promise<number> {
  await registry.settle();
  return registry.requests().filter((r) => r.path.startsWith('/v2/library/tool/')).length;
}

describe('podman with the registries.conf of --fallback', () => {
  it('pulls through the mirror while it is up; when it is down, upstream falls back to the upstream and none to nothing', async () => {
    const none = await podmanWith('none');
    const upstream = await podmanWith('upstream');
    expect(none.conf).toContain(`[[registry]]\nprefix = "docker.io"\nlocation = "${mirror.host}"\ninsecure = true\n`);
    expect(none.conf).not.toContain('[[registry.mirror]]');
    expect(upstream.conf).toContain(`[[registry]]\nprefix = "docker.io"\nlocation = "${registry.host}"\ninsecure = true\n\n[[registry.mirror]]\nlocation = "${mirror.host}"`);

    await none.podman.pull('docker.io/library/tool:1');
    await upstream.podman.pull('docker.io/library/tool:2');
    const served = mirror.logs().filter((l) => l.msg === 'request' && l.repo === 'library/tool' && l.route === 'manifest');
    expect(served.length).toBeGreaterThanOrEqual(2);

    await mirror.stop();
    registry.clearRequests();
    await expect(none.podman.pull('docker.io/library/tool:3')).rejects.toThrow();
    expect(await registryHits()).toBe(0);

    await upstream.podman.pull('docker.io/library/tool:4');
    expect(await upstream.podman.images()).toContain('docker.io/library/tool:4');
    expect(await registryHits()).toBeGreaterThan(0);
  }, 300_000);
});
