// Client authentication with the real clients people log in with: an htpasswd file made by the real
// `htpasswd -B`, then podman, Debian's Docker engine, skopeo, curl and containerd against one mirror
// (hosted `lab/...`, a loopback docker-registry as the default upstream), and a scoped token made with
// `ocimirror token create` used as a podman password. Every image is built on this machine; every
// reference names the mirror's loopback address, so no client can fall back to the internet. When a
// client step fails, the error carries the mirror's access-log lines for that repository.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { writeBaseRootfs } from '../support/base-rootfs.ts';
import { requireBinary } from '../support/binaries.ts';
import { runOcimirror } from '../support/cli.ts';
import { runCommand } from '../support/command.ts';
import { startContainerd, type RunningContainerd } from '../support/containerd.ts';
import { startDockerEngine, type DockerEngine } from '../support/docker-engine.ts';
import { writeHtpasswdFile } from '../support/htpasswd-b.ts';
import { buildImage, pushImage, skopeoCopy, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { skopeoListTags } from '../support/skopeo-list-tags.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const DIGEST = /sha256:[0-9a-f]{64}/;
const ALICE = `alice-${randomBytes(9).toString('base64url')}`;
const BOB = `bob-${randomBytes(9).toString('base64url')}`;
const WRONG = `wrong-${randomBytes(9).toString('base64url')}`;

let work: string;
let configFile: string;
let upstream: RunningRegistry;
let alpine: BuiltImage;
let mirror: RunningMirror;
let engine: DockerEngine;
let podman: Podman;
let containerd: RunningContainerd;
/** Secrets that must never reach the log (the scoped token's is added when it is made). */
const secrets = [ALICE, BOB, WRONG];

beforeAll(async () => {
  work = await makeTempDir('auth-clients-test');
  upstream = await startRegistry();
  alpine = await buildImage(join(work, 'alpine'), {
    tag: '3.8',
    layers: [{ files: { 'etc/os-release': 'ID=test\n' } }, { randomBytes: 64 * 1024, seed: 'auth-alpine' }, { files: { 'bin/hello': 'echo hi\n' } }],
  });
  await pushImage(alpine, upstream, 'library/alpine:3.8');

  const htpasswd = join(work, 'htpasswd');
  await writeHtpasswdFile(htpasswd, { alice: ALICE, bob: BOB });
  const dataDir = join(work, 'data');
  await mkdir(dataDir);
  const config: ConfigInput = {
    dataDir,
    hosted: { namespaces: ['lab'] },
    upstreams: [{ name: 'docker.io', url: upstream.url, aliases: ['docker.io'], default: true }],
    auth: {
      htpasswd,
      rules: [
        { repos: ['lab/**'], users: ['alice'], actions: ['pull', 'push', 'delete'] },
        { repos: ['lab/shared/**'], users: ['bob'], actions: ['pull'] },
      ],
    },
  };
  // The operator's config file (JSON is YAML) on the data dir the in-process mirror uses: `ocimirror
  // token` writes there and the running mirror sees it.
  configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify(config));
  mirror = await startMirror(config);

  // What a podman user writes for a plain-HTTP registry; no search registries, so no short name
  // can ever resolve to a registry on the internet.
  const registriesConf = join(work, 'registries.conf');
  await writeFile(registriesConf, `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${mirror.host}"\ninsecure = true\n`);
  [engine, podman, containerd] = await Promise.all([startDockerEngine(), createPodman(registriesConf), startContainerd()]);
  await podman.importImage(await writeBaseRootfs(work), 'localhost/base:1');
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([engine?.dispose(), podman?.dispose(), containerd?.dispose()]);
  await mirror?.dispose();
  await upstream?.dispose();
  if (work) await removeTempDir(work);
});

type LogLine = Record<string, unknown> & { error?: { code?: string; message?: string } };

function requestsFor(repo: string): LogLine[] {
  // No repository: the last requests of any kind (a login's /v2/ and token requests).
  const lines = mirror.logs().filter((l) => l.msg === 'request') as LogLine[];
  return repo ? lines.filter((l) => String(l.path).startsWith(`/v2/${repo}/`)) : lines.slice(-10);
}

function describeRequests(repo: string): string {
  return requestsFor(repo).map((l) => JSON.stringify({ method: l.method, path: l.path, status: l.status, user: l.user, error: l.error, userAgent: l.userAgent })).join('\n') || '(none)';
}

/** Runs a client step that must work; when it fails, the mirror's requests for `repo` are added to the error. */
async function step<T>(repo: string, what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (error) {
    throw new Error(`${(error as Error).message}\nmirror requests for ${repo}:\n${describeRequests(repo)}`, { cause: error });
  }
}

/** Runs a client step that must fail; resolves with its error message (what the user saw). */
async function refused(repo: string, what: Promise<unknown>): Promise<string> {
  const outcome = await what.then(
    (result) => ({ ok: true as const, result }),
    (error: unknown) => ({ ok: false as const, message: (error as Error).message }),
  );
  if (outcome.ok) throw new Error(`expected a refusal, but it worked: ${JSON.stringify(outcome.result).slice(0, 2000)}\nmirror requests for ${repo}:\n${describeRequests(repo)}`);
  return outcome.message;
}

/** `curl -u user:password <mirror>/path` with nothing from the host (-q: no .curlrc, no proxy variables). */
async function curlJson(path: string, creds?: string): Promise<{ status: number; body: unknown }> {
  const curl = requireBinary('curl', 'curl');
  const args = ['-q', '-sS', '--max-time', '30', '-w', '\n%{http_code}'];
  if (creds !== undefined) args.push('-u', creds);
  const { stdout } = await runCommand(curl, [...args, `${mirror.url}${path}`], { env: { PATH: process.env.PATH } });
  const newline = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, newline);
  return { status: Number(stdout.slice(newline + 1)), body: text ? JSON.parse(text) : undefined };
}

describe('logging in to an authenticating mirror', () => {
  it('podman: a wrong password fails to log in; login, push, pull back the same digest', async () => {
    const badLogin = await refused('', podman.run(['login', '--username', 'alice', '--password', WRONG, mirror.host]));
    expect(badLogin).toMatch(/invalid username\/password|unauthorized/i);
    expect(mirror.logs().some((l) => l.msg === 'login failed' && l.user === 'alice')).toBe(true);

    const login = await podman.run(['login', '--username', 'alice', '--password', ALICE, mirror.host]);
    expect(login.stdout).toContain('Login Succeeded');

    const ref = `${mirror.host}/lab/podman:1`;
    const { digest } = await step('lab/podman', podman.push('localhost/base:1', ref));
    expect(digest).toMatch(DIGEST);
    // Nothing local left, so the pull really fetches the image back (as push-clients.test.ts does).
    await podman.run(['rmi', 'localhost/base:1']);
    expect(await podman.images()).toEqual([]);
    await step('lab/podman', podman.pull(ref));
    expect(await podman.images()).toEqual([ref]);
    const { stdout } = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref]);
    expect(stdout.trim()).toBe(digest);
    // The base image again, under its local name, for the token test's pushes.
    await podman.run(['tag', ref, 'localhost/base:1']);
    await podman.run(['rmi', ref]);
    // Every request podman sent with credentials was alice's, and none was refused after the challenge.
    const lines = requestsFor('lab/podman');
    expect(lines.filter((l) => l.status === 403)).toEqual([]);
    expect(lines.filter((l) => (l.status as number) < 300).every((l) => l.user === 'alice')).toBe(true);
  }, 60_000);

  it('docker: a wrong password fails; login, push, rmi, pull; after logout the pull is 401 while anonymous pulls of mirrored public content work', async () => {
    const ref = `${mirror.host}/lab/docker:1`;
    const imageId = await engine.importBaseImage(ref);
    expect(imageId).toMatch(DIGEST);

    const badLogin = await refused('', engine.docker(['login', '--username', 'alice', '--password', WRONG, mirror.host]));
    expect(badLogin).toMatch(/unauthorized|incorrect username or password/i);

    const login = await engine.docker(['login', '--username', 'alice', '--password', ALICE, mirror.host]);
    expect(login.stdout).toContain('Login Succeeded');

    const pushed = await step('lab/docker', engine.docker(['push', ref]));
    const digest = pushed.stdout.match(/^1: digest: (sha256:[0-9a-f]{64}) size: \d+$/m)?.[1];
    expect(digest, pushed.stdout).toBeDefined();
    expect(pushed.stdout).not.toContain('Retrying');
    await engine.docker(['rmi', ref]);
    const pulled = await step('lab/docker', engine.docker(['pull', ref]));
    expect(pulled.stdout).toContain(`Digest: ${digest}`);
    expect((await engine.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim()).toBe(imageId);

    const logout = await engine.docker(['logout', mirror.host]);
    expect(logout.stdout).toContain(`Removing login credentials for ${mirror.host}`);
    await engine.docker(['rmi', ref]);
    const before = requestsFor('lab/docker').length;
    const anonymous = await refused('lab/docker', engine.docker(['pull', ref]));
    expect(anonymous).toMatch(/unauthorized|authentication required/i);
    const afterLogout = requestsFor('lab/docker').slice(before);
    expect(afterLogout.length).toBeGreaterThan(0);
    for (const line of afterLogout) {
      expect(line, JSON.stringify(line)).toMatchObject({ status: 401, error: { code: 'UNAUTHORIZED' } });
      expect(line.user, JSON.stringify(line)).toBeUndefined();
    }

    const publicRef = `${mirror.host}/library/alpine:3.8`;
    const publicPull = await step('library/alpine', engine.docker(['pull', publicRef]));
    expect(publicPull.stdout).toContain(`Digest: ${alpine.manifestDigest}`);
    const alpineLines = requestsFor('library/alpine').filter((l) => String(l.userAgent).includes('docker/'));
    expect(alpineLines.length).toBeGreaterThan(0);
    for (const line of alpineLines.filter((l) => l.status !== 401)) {
      expect(line, JSON.stringify(line)).toMatchObject({ status: 200, upstream: 'docker.io' });
      expect(line.user, JSON.stringify(line)).toBeUndefined();
    }
  }, 90_000);

  it('skopeo: alice copies in and lists tags; bob may neither list lab/skopeo nor push lab/shared/x (403 DENIED)', async () => {
    const creds = `alice:${ALICE}`;
    await step('lab/skopeo', skopeoCopy(alpine.ociRef, `docker://${mirror.host}/lab/skopeo:1`, { destCreds: creds, preserveDigests: true }));
    const tags = await step('lab/skopeo', skopeoListTags(`docker://${mirror.host}/lab/skopeo`, { creds }));
    expect(tags).toEqual({ Repository: `${mirror.host}/lab/skopeo`, Tags: ['1'] });

    // skopeo 1.9 prints only the status of a refused tags list (the mirror's body says DENIED: below).
    const listed = await refused('lab/skopeo', skopeoListTags(`docker://${mirror.host}/lab/skopeo`, { creds: `bob:${BOB}` }));
    expect(listed).toMatch(/403 \(Forbidden\)|denied/i);
    expect(requestsFor('lab/skopeo').filter((l) => l.user === 'bob')).toEqual([
      expect.objectContaining({ method: 'GET', path: '/v2/lab/skopeo/tags/list', status: 403, error: expect.objectContaining({ code: 'DENIED' }) }),
    ]);

    const copied = await refused('lab/shared/x', skopeoCopy(alpine.ociRef, `docker://${mirror.host}/lab/shared/x:1`, { destCreds: `bob:${BOB}`, preserveDigests: true }));
    expect(copied).toMatch(/denied/i);
    const denied = requestsFor('lab/shared/x').filter((l) => l.status === 403);
    expect(denied.length, describeRequests('lab/shared/x')).toBeGreaterThan(0);
    for (const line of denied) expect(line).toMatchObject({ user: 'bob', error: { code: 'DENIED' } });
    // Nothing of bob's reached the repository.
    expect(requestsFor('lab/shared/x').filter((l) => (l.status as number) < 300 && l.method !== 'HEAD')).toEqual([]);
    expect(await curlJson('/v2/lab/shared/x/tags/list', `alice:${ALICE}`)).toMatchObject({ status: 404 });
  }, 60_000);

  it('curl -u: _catalog lists only what the caller may pull', async () => {
    // Mirrored public content (pulled anonymously) and one repository bob may pull.
    await skopeoInspect(`docker://${mirror.host}/library/alpine:3.8`);
    await step('lab/shared/cat', skopeoCopy(alpine.ociRef, `docker://${mirror.host}/lab/shared/cat:1`, { destCreds: `alice:${ALICE}`, preserveDigests: true }));

    const asAlice = await curlJson('/v2/_catalog', `alice:${ALICE}`);
    expect(asAlice.status).toBe(200);
    const all = (asAlice.body as { repositories: string[] }).repositories;
    expect(all).toEqual(expect.arrayContaining(['lab/shared/cat', 'lab/skopeo', 'library/alpine']));
    expect(all.every((r) => r.startsWith('lab/') || r === 'library/alpine'), JSON.stringify(all)).toBe(true);

    expect(await curlJson('/v2/_catalog', `bob:${BOB}`)).toEqual({ status: 200, body: { repositories: ['lab/shared/cat', 'library/alpine'] } });
    expect(await curlJson('/v2/_catalog')).toEqual({ status: 200, body: { repositories: ['library/alpine'] } });
    // A wrong password is a 401, not an anonymous listing.
    expect(await curlJson('/v2/_catalog', `alice:${WRONG}`)).toMatchObject({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED' }] } });
  }, 60_000);

  it('containerd: ctr pull without --user fails, with --user alice works', async () => {
    const hostsDir = join(work, 'certs.d'); // empty: no hosts.toml of the host's is read
    await mkdir(hostsDir, { recursive: true });
    const ref = `${mirror.host}/lab/skopeo:1`;
    const pull = (user?: string) => containerd.ctr(['images', 'pull', '--plain-http', '--hosts-dir', hostsDir, ...(user ? ['--user', user] : []), ref]);

    const anonymous = await refused('lab/skopeo', pull());
    expect(anonymous).toMatch(/401 Unauthorized|unauthorized|authorization/i);
    expect(await containerd.images()).toEqual([]);

    await step('lab/skopeo', pull(`alice:${ALICE}`));
    expect(await containerd.images()).toEqual([ref]);
    expect(await containerd.content()).toEqual(expect.arrayContaining([alpine.manifestDigest, alpine.configDigest, ...alpine.layers.map((l) => l.digest)]));
    expect(await containerd.readUnpacked('bin/hello')).toBe('echo hi\n');
    const ctrLines = requestsFor('lab/skopeo').filter((l) => String(l.userAgent).startsWith('containerd/') && l.status === 200);
    expect(ctrLines.length).toBeGreaterThan(0);
    for (const line of ctrLines) expect(line.user).toBe('alice');
  }, 60_000);

  it('a scoped token: podman logs in with it, pushes lab/app, is denied lab/other; token ls shows its last use; after token rm the login fails', async () => {
    const created = await runOcimirror(['token', 'create', '--config', configFile, '--name', 'ci', '--repos', 'lab/app', '--actions', 'pull,push', '--expires', '1h', '--quiet']);
    expect(created, created.stderr).toMatchObject({ code: 0 });
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^ocm_[A-Za-z0-9_-]{43}$/);
    secrets.push(secret);

    const listedBefore = await runOcimirror(['token', 'ls', '--config', configFile]);
    expect(listedBefore.stdout).toMatch(/^ci\s+lab\/app\s+pull,push\s+.+\s+never$/m);

    const login = await podman.run(['login', '--username', 'ci', '--password', secret, mirror.host]);
    expect(login.stdout).toContain('Login Succeeded');
    const { digest } = await step('lab/app', podman.push('localhost/base:1', `${mirror.host}/lab/app:1`));
    expect(digest).toMatch(DIGEST);
    expect(requestsFor('lab/app').filter((l) => (l.status as number) < 300).every((l) => l.user === 'ci')).toBe(true);

    // podman's first request is a HEAD (no body to carry DENIED): it reports the 403 status.
    const other = await refused('lab/other', podman.push('localhost/base:1', `${mirror.host}/lab/other:1`));
    expect(other).toMatch(/403 \(Forbidden\)|denied/i);
    const denied = requestsFor('lab/other').filter((l) => l.status === 403);
    expect(denied.length, describeRequests('lab/other')).toBeGreaterThan(0);
    for (const line of denied) expect(line).toMatchObject({ user: 'ci', error: { code: 'DENIED' } });

    const listed = await runOcimirror(['token', 'ls', '--config', configFile]);
    expect(listed, listed.stderr).toMatchObject({ code: 0 });
    const row = listed.stdout.split('\n').find((l) => l.startsWith('ci '));
    expect(row, listed.stdout).toBeDefined();
    expect(row).toMatch(/^ci\s+lab\/app\s+pull,push\s+/);
    expect(row).not.toMatch(/never\s*$/);

    const removed = await runOcimirror(['token', 'rm', '--config', configFile, 'ci']);
    expect(removed, removed.stderr).toMatchObject({ code: 0, stdout: 'token "ci" revoked\n' });
    await podman.run(['logout', mirror.host]);
    const revoked = await refused('', podman.run(['login', '--username', 'ci', '--password', secret, mirror.host]));
    expect(revoked).toMatch(/invalid username\/password|unauthorized/i);
  }, 60_000);

  it('never logs a password or a token secret', () => {
    const text = mirror.logText();
    expect(text.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text.includes(secret), 'a secret is in the log').toBe(false);
  });
});
