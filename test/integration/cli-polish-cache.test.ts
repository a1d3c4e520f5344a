// Operator polish around the cache, against a real registry and the mirror on loopback: `ocimirror rm`
// of a whole repository and of a digest (a bare name is refused, never taken for `latest`); two upstream
// names on one lab registry URL; the admin API refuses Hosts that are not its own (DNS rebinding);
// access lines carry the bytes of JSON answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOcimirror, type CliResult } from '../support/cli.ts';
import { rawRequest, errorCode } from '../support/http.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { digestsOnDisk, imageDigests } from '../support/data-dir.ts';

let work: string;
let registry: RunningRegistry;
/** team/app:v1 and team/app:v2 share layer 0; team/other:1 shares layer 1 of v1; e is pulled by digest only and shares layer 0 of d. */
let v1: BuiltImage;
let v2: BuiltImage;
let other: BuiltImage;
let d: BuiltImage;
let e: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('cli-polish-cache');
  registry = await startRegistry();
  const appShared = { randomBytes: 24 * 1024, seed: 'polish-app-shared' };
  const withOther = { randomBytes: 20 * 1024, seed: 'polish-with-other' };
  const pinned = { randomBytes: 16 * 1024, seed: 'polish-pinned' };
  v1 = await buildImage(join(work, 'v1'), { tag: 'v1', layers: [appShared, withOther, { files: { v: '1\n' } }] });
  v2 = await buildImage(join(work, 'v2'), { tag: 'v2', layers: [appShared, { files: { v: '2\n' } }] });
  other = await buildImage(join(work, 'other'), { tag: '1', layers: [{ files: { o: 'other\n' } }, withOther] });
  d = await buildImage(join(work, 'd'), { tag: '1', layers: [pinned, { files: { d: 'd\n' } }] });
  e = await buildImage(join(work, 'e'), { tag: '1', layers: [pinned, { files: { e: 'e\n' } }] });
  await pushImage(v1, registry, 'team/app:v1');
  await pushImage(v2, registry, 'team/app:v2');
  await pushImage(other, registry, 'team/other:1');
  await pushImage(d, registry, 'pinned/d:1');
  await pushImage(e, registry, 'pinned/e:1');
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

function sorted(digests: Iterable<string>): string[] {
  return [...digests].sort();
}

describe('ocimirror rm', () => {
  let mirror: RunningMirror;
  const rm = (...args: string[]): Promise<CliResult> => runOcimirror(['rm', '--admin', mirror.adminUrl!, ...args]);

  beforeAll(async () => {
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    const warm = await runOcimirror(['warm', '--server', mirror.url, 'team/app:v1', 'team/app:v2', 'team/other:1', 'pinned/d:1', `pinned/e@${e.manifestDigest}`]);
    expect(warm.code, warm.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await mirror?.dispose();
  });

  it('refuses a name without tag or digest instead of removing :latest', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    const result = await rm('team/app');
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      'ocimirror rm: team/app: name a tag (team/app:latest) or a digest (team/app@sha256:...); to drop every cached tag of the repository: ocimirror rm --repository team/app',
    );
    expect(await digestsOnDisk(mirror.config.dataDir)).toEqual(before);
    const api = await fetch(`${mirror.adminUrl}/_ocimirror/images/team/app`, { method: 'DELETE' });
    expect(api.status).toBe(400);
    expect(((await api.json()) as { errors: { message: string }[] }).errors[0]!.message).toContain('DELETE /_ocimirror/repositories/<name>');
  });

  it('--repository drops every cached tag and frees what only the repository used, the dry run first', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    // Layer 0 is shared by v1 and v2 only: it goes with the repository. Layer 1 of v1 stays for team/other.
    const expected = sorted(new Set([...imageDigests(v1), ...imageDigests(v2)].filter((digest) => digest !== v1.layers[1]!.digest)));
    const dry = await rm('--repository', '--dry-run', '--json', 'team/app');
    expect(dry.code, dry.stderr).toBe(0);
    const [planned] = JSON.parse(dry.stdout) as { freed: { digest: string }[]; tags: string[]; dryRun: boolean }[];
    expect(planned).toMatchObject({ tags: ['v1', 'v2'], dryRun: true });
    expect(sorted(planned!.freed.map((f) => f.digest))).toEqual(expected);
    expect(await digestsOnDisk(mirror.config.dataDir)).toEqual(before);

    const done = await rm('--repository', 'team/app');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^docker\\.io/team/app \\(tags v1, v2\\): freed ${expected.length} blobs, .* \\(1 shared with other images kept\\)$`, 'm'));
    const after = await digestsOnDisk(mirror.config.dataDir);
    expect(sorted([...before].filter((digest) => !after.has(digest)))).toEqual(expected);
    for (const digest of imageDigests(other)) expect(after.has(digest)).toBe(true);
    const gone = await runOcimirror(['ls', '--admin', mirror.adminUrl!, 'team/app']);
    expect(gone.stderr).toContain('repository is not cached');
    expect((await rm('--repository', 'team/app')).stderr).toContain('repository is not cached');
  }, 60_000);

  it('a digest pulled by digest alone: frees its manifest and what only it used', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    const result = await rm(`pinned/e@${e.manifestDigest}`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^docker\\.io/pinned/e@${e.manifestDigest}: freed 3 blobs`, 'm'));
    const after = await digestsOnDisk(mirror.config.dataDir);
    expect(sorted([...before].filter((digest) => !after.has(digest)))).toEqual(sorted([e.manifestDigest, e.configDigest, e.layers[1]!.digest]));
    for (const digest of imageDigests(d)) expect(after.has(digest)).toBe(true);
    expect((await rm(`pinned/e@${e.manifestDigest}`)).stderr).toContain('manifest is not cached');
  }, 60_000);

  it('refuses a digest a cached tag points at: the tag would name a manifest that is gone', async () => {
    const before = await digestsOnDisk(mirror.config.dataDir);
    const result = await rm(`team/other@${other.manifestDigest}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cached tags point at this manifest (1): remove the tags instead');
    expect(await digestsOnDisk(mirror.config.dataDir)).toEqual(before);
  });
});

describe('two upstream names on one lab registry URL', () => {
  it('are accepted without aliases, each selected by its name', async () => {
    const table = [
      { name: 'docker.io', url: registry.url, default: true },
      { name: 'quay.io', url: registry.url },
    ];
    const mirror = await startMirror({ upstreams: table });
    try {
      expect(mirror.config.upstreams.map((u) => u.aliases)).toEqual([['docker.io'], ['quay.io']]);
      for (const ns of ['docker.io', 'quay.io']) {
        const res = await fetch(`${mirror.url}/v2/team/other/manifests/1?ns=${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
        expect(res.status, ns).toBe(200);
        expect(res.headers.get('oci-namespace')).toBe(ns);
        expect(res.headers.get('docker-content-digest')).toBe(other.manifestDigest);
      }
      const viaPath = await fetch(`${mirror.url}/v2/quay.io/team/other/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(viaPath.headers.get('oci-namespace')).toBe('quay.io');
      await viaPath.arrayBuffer();

      const file = join(work, 'two-names.yaml');
      await writeFile(file, JSON.stringify({ upstreams: table }));
      const out = join(work, 'two-names-conf');
      const generated = await runOcimirror(['config', 'containerd', '--config', file, '--endpoint', mirror.url, '--write', out]);
      expect(generated.code, generated.stderr).toBe(0);
      expect(generated.stdout).toContain(`${out}/docker.io/hosts.toml`);
      expect(generated.stdout).toContain(`${out}/quay.io/hosts.toml`);
    } finally {
      await mirror.dispose();
    }
  }, 60_000);
});

describe('the admin listener', () => {
  let mirror: RunningMirror;

  beforeAll(async () => {
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  });

  afterAll(async () => {
    await mirror?.dispose();
  });

  it('refuses a Host that is neither its own address nor loopback (DNS rebinding)', async () => {
    const port = new URL(mirror.adminUrl!).port;
    for (const host of [`evil.example:${port}`, 'evil.example', `192.0.2.1:${port}`]) {
      const res = await rawRequest(mirror.adminUrl!, { method: 'DELETE', path: '/_ocimirror/repositories/team/other', headers: { host } });
      expect(res.status, host).toBe(403);
      expect(errorCode(res)).toBe('DENIED');
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const res = await rawRequest(mirror.adminUrl!, { path: '/_ocimirror/repositories', headers: { host } });
      expect(res.status, host).toBe(200);
    }
    const refused = mirror.logs().find((l) => l.msg === 'request' && l.route === 'admin_refused');
    expect(refused).toMatchObject({ status: 403, method: 'DELETE' });
  });
});

describe('access lines', () => {
  it('carry the bytes of JSON answers (catalog, errors, readiness, the admin API), as of manifests and blobs', async () => {
    const mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    try {
      const answers: [string, string][] = [
        [mirror.url, '/v2/_catalog'],
        [mirror.url, '/v2/'],
        [mirror.url, '/v2/no/such/manifests/x'],
        [mirror.url, '/readyz'],
        [mirror.adminUrl!, '/_ocimirror/repositories'],
        [mirror.url, '/v2/team/other/manifests/1'],
        [mirror.url, `/v2/team/other/blobs/${other.layers[1]!.digest}`],
        [mirror.url, '/v2/team/other/tags/list'],
      ];
      const sizes = new Map<string, number>();
      for (const [base, path] of answers) {
        const res = await rawRequest(base, { path });
        expect(res.body.byteLength, path).toBeGreaterThan(0);
        sizes.set(path, res.body.byteLength);
      }
      for (const [path, size] of sizes) {
        const line = mirror.logs().find((l) => l.msg === 'request' && l.path === path);
        expect(line?.size_bytes, path).toBe(size);
      }
    } finally {
      await mirror.dispose();
    }
  }, 60_000);
});
