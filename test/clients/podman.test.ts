// podman (containers/image, the library cri-o pulls with) through the registries.conf that
// `ocimirror config podman` wrote. Its [[registry.mirror]] entries are used as generated; each
// registry's own location is rewritten to a loopback port nobody listens on, so the pull can only
// succeed through the mirror and a failing mirror can never send podman to the internet.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocimirrorOk } from '../support/cli.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

/** Connection refused, on this machine: the only place a wrong fallback could go. */
const DEAD_LOCATION = '127.0.0.1:1';

let work: string;
let registry: RunningRegistry;
let content: SeededContent;
let app: BuiltImage;
let mirror: RunningMirror;
let registriesConf: string;
let podman: Podman;

beforeAll(async () => {
  work = await makeTempDir('podman-client-test');
  registry = await startRegistry();
  content = await buildAndPush(registry, work);
  app = await buildImage(join(work, 'app'), { tag: 'v1', layers: [{ files: { app: 'from ghcr.io\n' } }] });
  await pushImage(app, registry, 'org/app:v1');
  // One registry behind two upstreams: the mirror's log says which one answered.
  const upstreams = [
    { name: 'docker.io', url: registry.url, aliases: ['docker.io', 'index.docker.io', 'registry-1.docker.io'], default: true },
    { name: 'ghcr.io', url: registry.url, aliases: ['ghcr.io'] },
  ];
  mirror = await startMirror({ upstreams });
  const configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify({ upstreams }));
  const out = join(work, 'conf');
  await ocimirrorOk(['config', 'podman', '--config', configFile, '--endpoint', mirror.url, '--fallback', 'registry', '--write', out]);
  const generated = await readFile(join(out, 'registries.conf'), 'utf8');
  expect(generated).toContain(`[[registry.mirror]]\nlocation = "${mirror.host}"\ninsecure = true`);
  expect(generated).toContain(`location = "${mirror.host}/ghcr.io"`);
  registriesConf = join(out, 'registries.conf');
  // The registries' own locations (the fallback after the mirror) -> nowhere.
  await writeFile(registriesConf, generated.replace(/^(prefix = (".*")\nlocation = )\2$/gm, `$1"${DEAD_LOCATION}"`));
  expect(await readFile(registriesConf, 'utf8')).not.toMatch(/^location = "(docker\.io|ghcr\.io)"$/m);
  podman = await createPodman(registriesConf);
}, 300_000);

afterAll(async () => {
  await podman?.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

function podmanRequests(): Record<string, unknown>[] {
  return mirror.logs().filter((l) => l.msg === 'request' && /libpod|containers/i.test(String(l.userAgent)));
}

describe('podman with the generated registries.conf', () => {
  it('pulls docker.io/library/alpine:3.8 through the mirror (default upstream, no path prefix)', async () => {
    await podman.pull('docker.io/library/alpine:3.8');
    expect(await podman.images()).toContain('docker.io/library/alpine:3.8');
    const { stdout } = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', 'docker.io/library/alpine:3.8']);
    expect(stdout.trim()).toBe(content.alpine.manifestDigest);
    const lines = podmanRequests().filter((l) => l.repo === 'library/alpine');
    expect(lines.map((l) => l.route)).toEqual(expect.arrayContaining(['manifest', 'blob']));
    for (const line of lines) expect(line).toMatchObject({ upstream: 'docker.io', status: 200 });
  }, 120_000);

  it('pulls ghcr.io/org/app:v1 through its path-prefixed mirror location', async () => {
    await podman.pull('ghcr.io/org/app:v1');
    expect(await podman.images()).toContain('ghcr.io/org/app:v1');
    const lines = podmanRequests().filter((l) => l.repo === 'org/app');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatchObject({ upstream: 'ghcr.io', status: 200 });
    expect(lines.some((l) => String(l.path).startsWith('/v2/ghcr.io/org/app/'))).toBe(true);
  }, 120_000);
});
