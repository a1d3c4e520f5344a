// Overrides: with `overrides: true` on the docker.io upstream, an image pushed as
// docker.io/library/alpine:3.8 answers INSTEAD of the upstream's for every client of that name —
// containerd (hosts.toml, ?ns=docker.io), podman (registries.conf mirror), DNS-spoofed Host headers —
// also with the upstream down; deleting the override brings the upstream's answer back. Fallbacks of
// containerd and podman point at the mirror or at a dead loopback port: nothing can leave the machine.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../support/binaries.ts';
import { ocimirrorOk } from '../support/cli.ts';
import { runCommand } from '../support/command.ts';
import { startContainerd, type RunningContainerd } from '../support/containerd.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const DEAD_LOCATION = '127.0.0.1:1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let registry: RunningRegistry;
let upstreamImage: BuiltImage;
let pushedImage: BuiltImage;
let mirror: RunningMirror;
let containerd: RunningContainerd;
let hostsDir: string;
let podman: Podman;

beforeAll(async () => {
  work = await makeTempDir('overrides-test');
  registry = await startRegistry();
  upstreamImage = await buildImage(join(work, 'upstream'), { tag: '3.8', layers: [{ files: { 'etc/origin': 'the upstream\n' } }] });
  await pushImage(upstreamImage, registry, 'library/alpine:3.8');
  await pushImage(upstreamImage, registry, 'library/alpine:3.9');
  pushedImage = await buildImage(join(work, 'pushed'), { tag: '3.8', layers: [{ files: { 'etc/origin': 'the operator\n' } }] });
  const upstreams = [
    { name: 'docker.io', url: registry.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true, overrides: true },
    { name: 'quay.io', url: registry.url, aliases: ['quay.io'] },
  ];
  mirror = await startMirror({ upstreams });

  const configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify({ upstreams }));
  hostsDir = join(work, 'certs.d');
  await ocimirrorOk(['config', 'containerd', '--config', configFile, '--endpoint', mirror.url, '--write', hostsDir]);
  for (const host of await readdir(hostsDir)) {
    const file = join(hostsDir, host, 'hosts.toml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^server = .*$/m, `server = "${mirror.url}"`));
  }
  containerd = await startContainerd();

  const out = join(work, 'conf');
  await ocimirrorOk(['config', 'podman', '--config', configFile, '--endpoint', mirror.url, '--fallback', 'registry', '--write', out]);
  const generated = await readFile(join(out, 'registries.conf'), 'utf8');
  await writeFile(join(out, 'registries.conf'), generated.replace(/^(prefix = (".*")\nlocation = )\2$/gm, `$1"${DEAD_LOCATION}"`));
  podman = await createPodman(join(out, 'registries.conf'));
}, 300_000);

afterAll(async () => {
  await podman?.dispose();
  await containerd?.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const head = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${mirror.url}${path}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST, ...headers } }).then((r) => r.headers.get('docker-content-digest'));

async function containerdDigest(reference: string): Promise<string> {
  await containerd.ctr(['images', 'rm', reference]).catch(() => undefined);
  await containerd.pull(reference, { hostsDir, platform: 'linux/amd64' });
  const { stdout } = await containerd.ctr(['images', 'ls', '--quiet']);
  expect(stdout).toContain(reference);
  const { stdout: listing } = await containerd.ctr(['images', 'ls']);
  const line = listing.split('\n').find((l) => l.startsWith(`${reference} `))!;
  return /sha256:[0-9a-f]{64}/.exec(line)![0];
}

async function podmanDigest(reference: string): Promise<string> {
  await podman.run(['rmi', '--force', reference]).catch(() => undefined);
  await podman.pull(reference);
  const { stdout } = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', reference]);
  return stdout.trim();
}

describe('a pushed override of docker.io/library/alpine:3.8', () => {
  it('is taken, and answered instead of the upstream tag to containerd (ns=docker.io), podman, Host and path-prefix clients', async () => {
    expect(await head('/v2/library/alpine/manifests/3.8')).toBe(upstreamImage.manifestDigest);
    await skopeoCopy(pushedImage.ociRef, `docker://${mirror.host}/library/alpine:3.8`);
    expect(await head('/v2/library/alpine/manifests/3.8')).toBe(pushedImage.manifestDigest);
    expect(await head('/v2/library/alpine/manifests/3.8?ns=docker.io')).toBe(pushedImage.manifestDigest);
    expect(await head('/v2/docker.io/library/alpine/manifests/3.8')).toBe(pushedImage.manifestDigest);
    expect(await head('/v2/library/alpine/manifests/3.8', { host: 'registry-1.docker.io' })).toBe(pushedImage.manifestDigest);
    // The upstream still has its own.
    expect(await head(`/v2/library/alpine/manifests/3.9`)).toBe(upstreamImage.manifestDigest);

    expect(await containerdDigest('docker.io/library/alpine:3.8')).toBe(pushedImage.manifestDigest);
    expect(await containerd.readUnpacked('etc/origin')).toBe('the operator\n');
    expect(await podmanDigest('docker.io/library/alpine:3.8')).toBe(pushedImage.manifestDigest);
  }, 180_000);

  it('lists the pushed tag beside the upstream tags', async () => {
    await skopeoCopy(pushedImage.ociRef, `docker://${mirror.host}/library/alpine:lab-only`);
    const body = (await (await fetch(`${mirror.url}/v2/library/alpine/tags/list`)).json()) as { tags: string[] };
    expect(body.tags).toEqual(['3.8', '3.9', 'lab-only']);
  });

  it('is answered with the upstream down', async () => {
    await registry.stop();
    try {
      expect(await podmanDigest('docker.io/library/alpine:3.8')).toBe(pushedImage.manifestDigest);
      expect(await head('/v2/library/alpine/manifests/lab-only?ns=docker.io')).toBe(pushedImage.manifestDigest);
    } finally {
      await registry.start();
    }
  }, 120_000);

  it('gives way to the upstream again once deleted (skopeo delete)', async () => {
    await runCommand(requireBinary('skopeo', 'skopeo'), ['delete', '--tls-verify=false', `docker://${mirror.host}/library/alpine:3.8`]);
    expect(await head('/v2/library/alpine/manifests/3.8')).toBe(upstreamImage.manifestDigest);
    expect(await containerdDigest('docker.io/library/alpine:3.8')).toBe(upstreamImage.manifestDigest);
    expect(await podmanDigest('docker.io/library/alpine:3.8')).toBe(upstreamImage.manifestDigest);
  }, 180_000);

  it('is refused, naming the setting, for an upstream whose overrides are off', async () => {
    const err = await skopeoCopy(pushedImage.ociRef, `docker://${mirror.host}/quay.io/org/app:1`).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain('overrides: true');
  });
});
