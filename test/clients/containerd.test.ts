// A real containerd pulls through the mirror with the hosts.toml files `ocimirror config containerd`
// wrote, exactly as a node with config_path would: containerd adds ?ns=docker.io and the mirror routes
// by it. `server =` is rewritten to the mirror too, so a failing mirror cannot send containerd to the
// upstream (or anywhere else) behind the test's back.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocimirrorOk } from '../support/cli.ts';
import { startContainerd, type RunningContainerd } from '../support/containerd.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

let work: string;
let registry: RunningRegistry;
let content: SeededContent;
/** library/warmed:1, pulled by containerd only after `ocimirror warm` and with the upstream stopped. */
let warmed: BuiltImage;
let mirror: RunningMirror;
let containerd: RunningContainerd;
let hostsDir: string;

beforeAll(async () => {
  work = await makeTempDir('containerd-client-test');
  registry = await startRegistry();
  content = await buildAndPush(registry, work);
  warmed = await buildImage(join(work, 'warmed'), { tag: '1', layers: [{ files: { 'etc/warmed': 'from the cache\n' } }] });
  await pushImage(warmed, registry, 'library/warmed:1');
  const upstreams = [{ name: 'docker.io', url: registry.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true }];
  mirror = await startMirror({ upstreams });

  // The operator's steps: the mirror's config file, then `ocimirror config containerd --write`.
  const configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify({ upstreams })); // JSON is YAML
  hostsDir = join(work, 'certs.d');
  await ocimirrorOk(['config', 'containerd', '--config', configFile, '--endpoint', mirror.url, '--write', hostsDir]);
  for (const host of await readdir(hostsDir)) {
    const file = join(hostsDir, host, 'hosts.toml');
    const text = await readFile(file, 'utf8');
    expect(text, file).toContain(`[host."${mirror.url}"]`);
    await writeFile(file, text.replace(/^server = .*$/m, `server = "${mirror.url}"`));
  }
  containerd = await startContainerd();
}, 300_000);

afterAll(async () => {
  await containerd?.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

/** The mirror's access-log lines for requests that containerd sent. */
function containerdRequests(): Record<string, unknown>[] {
  return mirror.logs().filter((l) => l.msg === 'request' && String(l.userAgent).startsWith('containerd/'));
}

describe('containerd with the generated hosts.toml', () => {
  it('writes a hosts.toml for every alias and for the mirror itself', async () => {
    expect((await readdir(hostsDir)).sort()).toEqual(['docker.io', 'registry-1.docker.io', mirror.host].sort());
  });

  it('pulls and unpacks docker.io/library/alpine:3.8 through the mirror, routed by ns=docker.io', async () => {
    const pulled = await containerd.pull('docker.io/library/alpine:3.8', { hostsDir, platform: 'linux/amd64' });
    expect(pulled.stdout).toMatch(/unpacking linux\/amd64 sha256:[0-9a-f]{64}\.\.\.\ndone/);
    expect(await containerd.images()).toContain('docker.io/library/alpine:3.8');
    expect(await containerd.content()).toEqual(expect.arrayContaining([content.alpine.manifestDigest, content.alpine.configDigest, ...content.alpine.layers.map((l) => l.digest)]));
    // The layers' files are on disk, unpacked by the native snapshotter.
    expect(await containerd.readUnpacked('bin/hello')).toBe('echo hi\n');
    expect(await containerd.readUnpacked('etc/os-release')).toBe('ID=test\n');

    const lines = containerdRequests();
    expect(lines.length).toBeGreaterThanOrEqual(2 + content.alpine.layers.length);
    for (const line of lines) {
      expect(line, JSON.stringify(line)).toMatchObject({ ns: 'docker.io', upstream: 'docker.io', repo: 'library/alpine' });
    }
    expect(lines.map((l) => l.route)).toEqual(expect.arrayContaining(['manifest', 'blob']));
    expect(lines.filter((l) => l.status !== 200)).toEqual([]);
  });

  it('pulls a multi-arch index with --all-platforms', async () => {
    const pulled = await containerd.pull('docker.io/library/multi:1', { hostsDir, allPlatforms: true });
    expect(pulled.stdout).toContain('unpacking linux/amd64');
    expect(pulled.stdout).toContain('unpacking linux/arm64');
    const digests = await containerd.content();
    expect(digests).toContain(content.multi.indexDigest);
    for (const m of content.multi.manifests) expect(digests).toEqual(expect.arrayContaining([m.manifestDigest, m.configDigest, ...m.layers.map((l) => l.digest)]));
  });

  it('pulls a Docker schema 2 image', async () => {
    await containerd.pull(`docker.io/${content.dockerRepo}:1`, { hostsDir, platform: 'linux/amd64' });
    expect(await containerd.images()).toContain(`docker.io/${content.dockerRepo}:1`);
  });

  it('pulls an image that `ocimirror warm` cached, with the upstream stopped', async () => {
    await ocimirrorOk(['warm', '--server', mirror.url, 'docker.io/library/warmed:1']);
    await registry.stop();
    try {
      await containerd.pull('docker.io/library/warmed:1', { hostsDir, platform: 'linux/amd64' });
      expect(await containerd.readUnpacked('etc/warmed')).toBe('from the cache\n');
      expect(await containerd.content()).toEqual(expect.arrayContaining([warmed.manifestDigest, warmed.configDigest, warmed.layers[0]!.digest]));
    } finally {
      await registry.start();
    }
  });
});
