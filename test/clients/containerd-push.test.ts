// The containerlab flow with real containerd daemons: one containerd pushes an image into a hosted
// repository of the mirror (`ctr images push`), a second containerd (another root, nothing shared)
// pulls it back through a hosts.toml mirror entry and directly. No image comes from the internet:
// containerd #1 imports an OCI archive built here. Every hosts.toml `server =` points at the mirror,
// so a failing mirror cannot send containerd anywhere else.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../support/binaries.ts';
import { runCommand, type CommandResult } from '../support/command.ts';
import { startContainerd, type RunningContainerd } from '../support/containerd.ts';
import { buildImage, manifestDigestOf, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/** A registry host name that resolves nowhere: only the hosts.toml entry makes it reachable. */
const LAB_HOST = 'registry.lab:5000';
const APP_FILE = 'etc/lab-app';
const APP_TEXT = 'pushed by containerd\n';
/** The name `ctr images import` gives the image in containerd #1. */
const LOCAL_NAME = 'import.local/app:1';

let work: string;
let upstream: RunningRegistry;
let mirror: RunningMirror;
let image: BuiltImage;
let pusher: RunningContainerd;
let puller: RunningContainerd;
let hostsDir: string;

beforeAll(async () => {
  work = await makeTempDir('containerd-push-test');
  // The mirror's default upstream; nothing pushed to the hosted namespace may ever reach it.
  upstream = await startRegistry();
  mirror = await startMirror({
    hosted: { namespaces: ['lab'] },
    upstreams: [{ name: 'docker.io', url: upstream.url, aliases: ['docker.io'], default: true }],
  });

  image = await buildImage(join(work, 'layout'), {
    tag: '1',
    layers: [{ files: { [APP_FILE]: APP_TEXT, 'bin/app': 'echo lab\n' } }, { randomBytes: 2 * 1024 * 1024, seed: 'containerd-push' }],
  });
  // An OCI image layout in a tar is what `ctr images import` reads (as `docker save`'s output would be).
  const archive = join(work, 'app.tar');
  await runCommand(requireBinary('tar', 'tar'), ['-C', image.layoutDir, '-cf', archive, 'oci-layout', 'index.json', 'blobs']);

  hostsDir = join(work, 'certs.d');
  await mkdir(join(hostsDir, LAB_HOST), { recursive: true });
  await writeFile(
    join(hostsDir, LAB_HOST, 'hosts.toml'),
    `server = "${mirror.url}"\n\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`,
  );

  [pusher, puller] = await Promise.all([startContainerd(), startContainerd()]);
  // The index.json entry is tagged "1"; --base-name makes that import.local/app:1.
  await pusher.ctr(['images', 'import', '--base-name', LOCAL_NAME.split(':')[0]!, archive]);
  expect(await pusher.images()).toContain(LOCAL_NAME);
}, 300_000);

afterAll(async () => {
  await pusher?.dispose();
  await puller?.dispose();
  await mirror?.dispose();
  await upstream?.dispose();
  if (work) await removeTempDir(work);
});

type AccessLine = Record<string, unknown> & { method: string; path: string; status: number; ns?: string };

/** Access-log lines of requests containerd sent, from `from` on (an index into all of them). */
function containerdRequests(from = 0): AccessLine[] {
  return (mirror.logs().filter((l) => l.msg === 'request' && String(l.userAgent).startsWith('containerd/')) as AccessLine[]).slice(from);
}

/** Shows a request compactly in assertion messages, with the error the mirror logged for it. */
function show(lines: AccessLine[]): string[] {
  return lines.map((l) => {
    const err = l.error ?? (l.err as { message?: unknown } | undefined)?.message;
    return `${l.method} ${l.path}${l.ns ? `?ns=${l.ns}` : ''} -> ${l.status}${err ? ` ${JSON.stringify(err)}` : ''}`;
  });
}

/** Runs a ctr command; when it fails, the error lists what the mirror answered containerd meanwhile. */
async function ctr(containerd: RunningContainerd, args: string[]): Promise<CommandResult> {
  const before = containerdRequests().length;
  try {
    return await containerd.ctr(args);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nThe mirror's answers to containerd meanwhile:\n${show(containerdRequests(before)).join('\n')}`, { cause: err });
  }
}

/** The manifest digest containerd records for an image name (`ctr images ls`: REF TYPE DIGEST ...). */
async function imageDigest(containerd: RunningContainerd, name: string): Promise<string | undefined> {
  const { stdout } = await containerd.ctr(['images', 'ls']);
  return stdout
    .split('\n')
    .map((line) => line.split(/\s+/))
    .find((columns) => columns[0] === name)?.[2];
}

async function tagsOf(repository: string): Promise<unknown> {
  const res = await fetch(`${mirror.url}/v2/${repository}/tags/list`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status, `GET /v2/${repository}/tags/list`).toBe(200);
  return res.json();
}

/** The upstream must never hear of the hosted namespace. */
async function expectUpstreamUntouched(): Promise<void> {
  await upstream.settle();
  expect(upstream.requests().filter((r) => r.path.includes('/lab/'))).toEqual([]);
}

function allDigests(): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}

describe('containerd pushes to a hosted repository and another containerd pulls it', () => {
  it('ctr images push --plain-http stores the image as lab/app:1', async () => {
    const before = containerdRequests().length;
    await ctr(pusher, ['images', 'push', '--plain-http', `${mirror.host}/lab/app:1`, LOCAL_NAME]);

    const lines = containerdRequests(before);
    // Each blob: HEAD (404) -> POST /blobs/uploads/ -> PUT <Location>&digest=...; then HEAD and PUT of the tag.
    const blobPuts = lines.filter((l) => l.method === 'PUT' && l.path.startsWith('/v2/lab/app/blobs/uploads/'));
    expect(blobPuts.map((l) => l.status), show(lines).join('\n')).toEqual(Array(1 + image.layers.length).fill(201));
    expect(lines.filter((l) => l.method === 'PUT' && l.path === '/v2/lab/app/manifests/1').map((l) => l.status), show(lines).join('\n')).toEqual([201]);
    const unexpected = lines.filter((l) => l.status >= 400 && !(l.method === 'HEAD' && l.status === 404));
    expect(show(unexpected)).toEqual([]);

    expect(await tagsOf('lab/app')).toEqual({ name: 'lab/app', tags: ['1'] });
    expect((await skopeoInspect(`docker://${mirror.host}/lab/app:1`)).Digest).toBe(image.manifestDigest);
    expect(await manifestDigestOf(`docker://${mirror.host}/lab/app:1`)).toBe(image.manifestDigest);
    await expectUpstreamUntouched();
  });

  it('pushing the same image again uploads nothing', async () => {
    const before = containerdRequests().length;
    await ctr(pusher, ['images', 'push', '--plain-http', `${mirror.host}/lab/app:1`, LOCAL_NAME]);
    const lines = containerdRequests(before);
    expect(show(lines.filter((l) => l.method !== 'HEAD'))).toEqual([]);
    expect(show(lines.filter((l) => l.status !== 200))).toEqual([]);
  });

  it(`a second containerd pulls ${LAB_HOST}/lab/app:1 through its hosts.toml mirror entry (ns=${LAB_HOST})`, async () => {
    const before = containerdRequests().length;
    const pulled = await ctr(puller, ['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', '--platform', 'linux/amd64', `${LAB_HOST}/lab/app:1`]);
    expect(pulled.stdout).toMatch(/unpacking linux\/amd64 sha256:[0-9a-f]{64}\.\.\.\ndone/);
    expect(await imageDigest(puller, `${LAB_HOST}/lab/app:1`)).toBe(image.manifestDigest);
    expect(await puller.content()).toEqual(expect.arrayContaining(allDigests()));
    expect(await puller.readUnpacked(APP_FILE)).toBe(APP_TEXT);
    expect(await puller.readUnpacked('bin/app')).toBe('echo lab\n');

    const lines = containerdRequests(before);
    expect(show(lines.filter((l) => l.status !== 200))).toEqual([]);
    for (const line of lines) expect(line, JSON.stringify(line)).toMatchObject({ ns: LAB_HOST });
    const paths = lines.map((l) => `${l.method} ${l.path}`);
    expect(paths).toEqual(expect.arrayContaining(image.layers.map((l) => `GET /v2/lab/app/blobs/${l.digest}`)));
    await expectUpstreamUntouched();
  });

  it('the second containerd pulls 127.0.0.1:PORT/lab/app:1 directly with --plain-http', async () => {
    // Forget the image of the previous test, content and snapshots included, so every blob is fetched again.
    await puller.ctr(['images', 'rm', '--sync', `${LAB_HOST}/lab/app:1`]);
    expect(await puller.content()).toEqual([]);
    expect(await puller.readUnpacked(APP_FILE)).toBeUndefined();

    const before = containerdRequests().length;
    const reference = `${mirror.host}/lab/app:1`;
    const pulled = await ctr(puller, ['images', 'pull', '--plain-http', '--snapshotter', 'native', '--platform', 'linux/amd64', reference]);
    expect(pulled.stdout).toMatch(/unpacking linux\/amd64 sha256:[0-9a-f]{64}\.\.\.\ndone/);
    expect(await imageDigest(puller, reference)).toBe(image.manifestDigest);
    expect(await puller.content()).toEqual(expect.arrayContaining(allDigests()));
    expect(await puller.readUnpacked(APP_FILE)).toBe(APP_TEXT);

    const lines = containerdRequests(before);
    expect(show(lines.filter((l) => l.status !== 200))).toEqual([]);
    for (const line of lines) expect(line.ns, JSON.stringify(line)).toBeUndefined();
    expect(lines.map((l) => `${l.method} ${l.path}`)).toEqual(expect.arrayContaining(allDigests().slice(1).map((d) => `GET /v2/lab/app/blobs/${d}`)));
    await expectUpstreamUntouched();
  });

  it('the second containerd pushes the pulled image under a new name: containerd asks to mount the blobs from lab/app', async () => {
    const source = `${mirror.host}/lab/app:1`;
    const copy = `${mirror.host}/lab/copy:2`;
    await puller.ctr(['images', 'tag', source, copy]);
    const before = containerdRequests().length;
    await ctr(puller, ['images', 'push', '--plain-http', copy]);

    const lines = containerdRequests(before);
    // The pulled blobs carry containerd.io/distribution.source.127.0.0.1=lab/app, so containerd sends
    // POST /v2/lab/copy/blobs/uploads/?mount=<digest>&from=lab/app; 201 mounts, 202 means upload instead.
    const posts = lines.filter((l) => l.method === 'POST' && l.path === '/v2/lab/copy/blobs/uploads/');
    expect(posts.map((l) => l.status).sort(), show(lines).join('\n')).toEqual(Array(1 + image.layers.length).fill(expect.toBeOneOf([201, 202])));
    const unexpected = lines.filter((l) => l.status >= 400 && !(l.method === 'HEAD' && l.status === 404));
    expect(show(unexpected)).toEqual([]);

    expect(await tagsOf('lab/copy')).toEqual({ name: 'lab/copy', tags: ['2'] });
    expect(await manifestDigestOf(`docker://${copy}`)).toBe(image.manifestDigest);
    await expectUpstreamUntouched();
  });
});
