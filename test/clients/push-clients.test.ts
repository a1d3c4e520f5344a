// Pushing to the mirror's hosted repositories (`lab/...`) with the real clients people use: a private
// Docker engine, buildah and podman, each with an image built on this machine (never pulled from
// outside), then reading it back the way a user would. The upstream is a loopback docker-registry
// that never sees any of it. When a client fails, the error carries the mirror's access log lines
// for that repository: the request that broke the push.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_MARKER, writeBaseRootfs } from '../support/base-rootfs.ts';
import { createBuildah, type Buildah } from '../support/buildah.ts';
import { startDockerEngine, type DockerEngine } from '../support/docker-engine.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { manifestDigestOf, skopeoInspect } from '../support/skopeo.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const DIGEST = /sha256:[0-9a-f]{64}/;

let work: string;
let upstream: RunningRegistry;
let mirror: RunningMirror;
let engine: DockerEngine;
let buildah: Buildah;
let podman: Podman;

beforeAll(async () => {
  work = await makeTempDir('push-clients-test');
  upstream = await startRegistry();
  mirror = await startMirror({
    hosted: { namespaces: ['lab'] },
    upstreams: [{ name: 'docker.io', url: upstream.url, aliases: ['docker.io'], default: true }],
  });
  // What a podman user writes for a plain-HTTP registry; no search registries, so no short name
  // can ever resolve to a registry on the internet.
  const registriesConf = join(work, 'registries.conf');
  await writeFile(registriesConf, `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${mirror.host}"\ninsecure = true\n`);
  [engine, buildah, podman] = await Promise.all([startDockerEngine(), createBuildah(), createPodman(registriesConf)]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([engine?.dispose(), buildah?.dispose(), podman?.dispose()]);
  await mirror?.dispose();
  await upstream?.dispose();
  if (work) await removeTempDir(work);
});

/** Runs a client step; when it fails, the mirror's requests for `repo` are added to the error. */
async function step<T>(repo: string, what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (error) {
    const lines = mirror.logs().filter((l) => l.msg === 'request' && String(l.path).includes(`/${repo}/`));
    const requests = lines.map((l) => JSON.stringify({ method: l.method, path: l.path, route: l.route, status: l.status, error: l.error ?? l.err, userAgent: l.userAgent }));
    throw new Error(`${(error as Error).message}\nmirror requests for ${repo}:\n${requests.join('\n') || '(none)'}`, { cause: error });
  }
}

async function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${mirror.url}${path}`);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function expectListed(repo: string, tag: string): Promise<void> {
  const catalog = await getJson('/v2/_catalog');
  expect(catalog).toMatchObject({ status: 200, body: { repositories: expect.arrayContaining([repo]) } });
  const tags = await getJson(`/v2/${repo}/tags/list`);
  expect(tags).toMatchObject({ status: 200, body: { name: repo, tags: expect.arrayContaining([tag]) } });
}

function upstreamSawNothing(): void {
  expect(upstream.requests().filter((r) => r.path.includes('/lab/'))).toEqual([]);
}

describe('pushing to a hosted repository', () => {
  it('docker push, docker rmi, docker pull: the same image comes back', async () => {
    const ref = `${mirror.host}/lab/app:1`;
    const imageId = await engine.importBaseImage(ref);
    expect(imageId).toMatch(DIGEST);

    const pushed = await step('lab/app', engine.docker(['push', ref]));
    const digest = pushed.stdout.match(/^1: digest: (sha256:[0-9a-f]{64}) size: \d+$/m)?.[1];
    expect(digest, pushed.stdout).toBeDefined();
    expect(pushed.stdout).not.toContain('Retrying'); // docker retries failed layer uploads by itself

    await engine.docker(['rmi', ref]);
    expect((await engine.docker(['images', '--quiet'])).stdout.trim()).toBe('');

    const pulled = await step('lab/app', engine.docker(['pull', ref]));
    expect(pulled.stdout).toContain(`Digest: ${digest}`);
    expect(pulled.stdout).toContain('Downloaded newer image');
    expect(pulled.stdout).not.toContain('Retrying');
    const { stdout } = await engine.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoDigests}}', ref]);
    const [id, repoDigests] = stdout.trim().split(' ', 2);
    expect(id).toBe(imageId);
    expect(JSON.parse(repoDigests ?? '[]')).toEqual([`${mirror.host}/lab/app@${digest}`]);
    // The layers came back whole: a container made from the pulled image has the base's files.
    await engine.docker(['create', '--name', 'app-check', ref, '/bin/busybox', 'true']);
    expect((await engine.docker(['cp', `app-check:/${BASE_MARKER.path}`, '-'])).stdout).toContain(BASE_MARKER.text);
    await engine.docker(['rm', 'app-check']);

    await expectListed('lab/app', '1');
    await upstream.settle();
    upstreamSawNothing();
  }, 90_000);

  it('docker push of the same image to a second repository gives the same digest', async () => {
    // docker remembers where it pushed each layer and first asks to mount it from there (POST ?mount=&from=).
    const first = `${mirror.host}/lab/app:1`;
    const second = `${mirror.host}/lab/app-copy:1`;
    await engine.docker(['tag', first, second]);
    const pushed = await step('lab/app-copy', engine.docker(['push', second]));
    const { stdout } = await engine.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', first]);
    const digest = pushed.stdout.match(/^1: digest: (sha256:[0-9a-f]{64}) size: \d+$/m)?.[1];
    expect(JSON.parse(stdout)).toContain(`${mirror.host}/lab/app@${digest}`);
    await expectListed('lab/app-copy', '1');
  }, 60_000);

  it('buildah push: skopeo inspect through the mirror shows the digest buildah wrote', async () => {
    await buildah.buildFromScratch('localhost/tools:1', { files: { 'usr/share/tools/README': 'built by buildah from scratch\n' } });
    const ref = `${mirror.host}/lab/tools:1`;
    const { digest } = await step('lab/tools', buildah.push('localhost/tools:1', ref));
    expect(digest).toMatch(DIGEST);

    const info = await step('lab/tools', skopeoInspect(`docker://${ref}`));
    expect(info.Digest).toBe(digest);
    expect(info.Layers).toHaveLength(1);
    // The manifest bytes served are the bytes buildah pushed.
    expect(await manifestDigestOf(`docker://${ref}`)).toBe(digest);
    await expectListed('lab/tools', '1');
  }, 60_000);

  it('podman push, podman rmi, podman pull: the same digest comes back', async () => {
    await podman.importImage(await writeBaseRootfs(work), 'localhost/base:1');
    const ref = `${mirror.host}/lab/podman:1`;
    const { digest, output } = await step('lab/podman', podman.push('localhost/base:1', ref));
    expect(digest).toMatch(DIGEST);
    expect(output).not.toContain('retrying'); // podman retries failed requests by itself

    await podman.run(['rmi', 'localhost/base:1']);
    expect(await podman.images()).toEqual([]);

    await step('lab/podman', podman.pull(ref));
    expect(await podman.images()).toEqual([`${mirror.host}/lab/podman:1`]);
    const { stdout } = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref]);
    expect(stdout.trim()).toBe(digest);
    await podman.run(['create', '--name', 'podman-check', ref, '/bin/busybox', 'true']);
    expect((await podman.run(['cp', `podman-check:/${BASE_MARKER.path}`, '-'])).stdout).toContain(BASE_MARKER.text);
    await podman.run(['rm', 'podman-check']);
    await expectListed('lab/podman', '1');
  }, 60_000);
});
