// Hosted repositories: skopeo pushes into lab/..., pulls back the same digests, and the push side of the
// distribution-spec as its conformance suite checks it (sessions, chunks, mounts, manifest rules), with
// the upstream (a real docker-registry) never asked about hosted names.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, buildIndex, skopeoCopy, skopeoInspect, type BuiltImage, type BuiltIndex } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { runCommand } from '../support/command.ts';
import { ocimirrorOk } from '../support/cli.ts';
import { requireBinary } from '../support/binaries.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let image: BuiltImage;
let multi: BuiltIndex;

beforeAll(async () => {
  work = await makeTempDir('hosted-push-test');
  registry = await startRegistry();
  mirror = await startMirror({ hosted: { namespaces: ['lab', 'myorg/team'] }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  image = await buildImage(join(work, 'img'), { tag: '1', layers: [{ files: { 'etc/app': 'version 1\n' } }, { files: { 'usr/bin/tool': 'tool\n' } }] });
  multi = await buildIndex(join(work, 'multi'), {
    tag: '2',
    platforms: [
      { os: 'linux', architecture: 'amd64', layers: [{ files: { arch: 'amd64\n' } }] },
      { os: 'linux', architecture: 'arm64', layers: [{ files: { arch: 'arm64\n' } }] },
    ],
  });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const req = (path: string, init: RequestInit = {}) => fetch(`${mirror.url}${path}`, init);
const code = async (res: Response) => ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;

describe('pushing to a hosted namespace with skopeo', () => {
  it('copies an OCI layout in, and out again with the same digests', async () => {
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/app:1`);
    const inspected = await skopeoInspect(`docker://${mirror.host}/lab/app:1`);
    expect(inspected.Digest).toBe(image.manifestDigest);
    const out = join(work, 'out');
    await skopeoCopy(`docker://${mirror.host}/lab/app:1`, `oci:${out}:1`, { preserveDigests: true });
    const back = await skopeoInspect(`oci:${out}:1`);
    expect(back.Digest).toBe(image.manifestDigest);
    expect(back.Layers).toEqual(image.layers.map((l) => l.digest));
    // Hosted names never reach the upstream.
    expect(registry.requests().filter((r) => r.path.includes('lab/'))).toEqual([]);
  });

  it('copies a multi-arch index with --all, and lists tags with skopeo list-tags', async () => {
    await skopeoCopy(multi.ociRef, `docker://${mirror.host}/myorg/team/tool:2`, { all: true });
    const raw = JSON.parse(await skopeoInspect(`docker://${mirror.host}/myorg/team/tool:2`, { raw: true })) as { mediaType: string; manifests: { digest: string }[] };
    expect(raw.mediaType).toBe(OCI_INDEX);
    expect(raw.manifests.map((m) => m.digest)).toEqual(multi.manifests.map((m) => m.manifestDigest));
    const head = await req('/v2/myorg/team/tool/manifests/2', { method: 'HEAD', headers: { accept: OCI_INDEX } });
    expect(head.headers.get('docker-content-digest')).toBe(multi.indexDigest);
    for (const platform of multi.manifests) {
      const res = await req(`/v2/myorg/team/tool/manifests/${platform.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
      expect(res.status).toBe(200);
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(platform.manifestDigest);
    }
    const tags = await runCommand(requireBinary('skopeo', 'skopeo'), ['list-tags', '--tls-verify=false', `docker://${mirror.host}/myorg/team/tool`]);
    expect((JSON.parse(tags.stdout) as { Tags: string[] }).Tags).toEqual(['2']);
  });

  it('shows hosted repositories and hosted bytes apart from the cache in `ocimirror ls` and the metrics', async () => {
    const { stdout } = await ocimirrorOk(['ls', '--admin', mirror.adminUrl!]);
    expect(stdout).toMatch(/^lab\/app\s+hosted\s+1$/m);
    expect(stdout).toMatch(/^myorg\/team\/tool\s+hosted\s+1$/m);
    const pushed = image.manifestSize + image.layers.reduce((n, l) => n + l.size, 0);
    expect(stdout).toMatch(/^cache: \S+ \S+ {3}hosted: \S+ \S+ \(never evicted\)$/m);
    const metrics = await (await req('/metrics')).text();
    const gauge = Number(/^ocimirror_hosted_size_bytes (\d+)$/m.exec(metrics)?.[1]);
    expect(gauge).toBeGreaterThan(pushed);
    expect(/^ocimirror_blob_store_size_bytes (\d+)$/m.exec(metrics)?.[1]).toBe('0');
  });

  it('keeps hosted blobs when `ocimirror rm` drops a cached image that shares them', async () => {
    const upstream = await buildImage(join(work, 'shared'), { tag: '1', layers: [{ files: { shared: 'layer from the upstream\n' } }] });
    await skopeoCopy(upstream.ociRef, `docker://${registry.host}/library/shared:1`);
    // Cached through the mirror, then pushed from there into a hosted repository: the same bytes, stored once.
    await skopeoCopy(`docker://${mirror.host}/library/shared:1`, `docker://${mirror.host}/lab/shared-copy:1`, { preserveDigests: true });
    const removed = await ocimirrorOk(['rm', '--admin', mirror.adminUrl!, 'library/shared:1']);
    expect(removed.stdout).not.toContain(upstream.layers[0]!.digest.slice(7, 19));
    for (const digest of [upstream.manifestDigest, upstream.configDigest, upstream.layers[0]!.digest]) {
      const kind = digest === upstream.manifestDigest ? 'manifests' : 'blobs';
      expect((await req(`/v2/lab/shared-copy/${kind}/${digest}`, { headers: { accept: OCI_MANIFEST } })).status, digest).toBe(200);
    }
  });

  it('lists hosted repositories in _catalog beside cached ones', async () => {
    const body = (await (await req('/v2/_catalog')).json()) as { repositories: string[] };
    expect(body.repositories).toEqual(expect.arrayContaining(['lab/app', 'myorg/team/tool']));
  });
});

describe('the push protocol (distribution-spec)', () => {
  const blob = Buffer.from('a blob pushed in three chunks, '.repeat(1000));
  const digest = sha256(blob);

  it('takes a chunked upload, reports its progress, refuses an out-of-order chunk with 416, and finishes', async () => {
    const started = await req('/v2/lab/chunks/blobs/uploads/', { method: 'POST' });
    expect(started.status).toBe(202);
    const location = started.headers.get('location')!;
    expect(location).toMatch(/^\/v2\/lab\/chunks\/blobs\/uploads\/[0-9a-f-]{36}$/);
    expect(started.headers.get('docker-upload-uuid')).toBe(location.split('/').pop());
    const parts = [blob.subarray(0, 10_000), blob.subarray(10_000, 20_000), blob.subarray(20_000)];
    let offset = 0;
    for (const part of parts.slice(0, 2)) {
      const res = await req(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + part.length - 1}` }, body: part });
      expect(res.status).toBe(202);
      offset += part.length;
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`);
    }
    const wrong = await req(location, { method: 'PATCH', headers: { 'content-range': `5-${5 + parts[2]!.length - 1}` }, body: parts[2] });
    expect(wrong.status).toBe(416);
    expect(wrong.headers.get('range')).toBe(`0-${offset - 1}`);
    expect(await code(wrong)).toBe('RANGE_INVALID');
    const garbled = await req(location, { method: 'PATCH', headers: { 'content-range': 'bytes=a-b' }, body: parts[2] });
    expect(garbled.status).toBe(416);
    expect(await code(garbled)).toBe('RANGE_INVALID');
    const short = await req(location, { method: 'PATCH', headers: { 'content-range': `${offset}-${offset + parts[2]!.length}` }, body: parts[2] });
    expect(short.status).toBe(400);
    expect(await code(short)).toBe('SIZE_INVALID');
    const status = await req(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${offset - 1}`);
    // Not visible as a blob before it is finished.
    expect((await req(`/v2/lab/chunks/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const done = await req(`${location}?digest=${digest}`, { method: 'PUT', body: parts[2] });
    expect(done.status).toBe(201);
    expect(done.headers.get('location')).toBe(`/v2/lab/chunks/blobs/${digest}`);
    expect(done.headers.get('docker-content-digest')).toBe(digest);
    const got = await req(`/v2/lab/chunks/blobs/${digest}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
    const ranged = await req(`/v2/lab/chunks/blobs/${digest}`, { headers: { range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(10, 20))).toBe(true);
    // A finished upload is gone.
    const after = await req(location);
    expect(after.status).toBe(404);
    expect(await code(after)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('takes a monolithic upload and refuses a digest that does not match, storing nothing', async () => {
    const bytes = Buffer.from('monolithic');
    const ok = await req(`/v2/lab/mono/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(ok.status).toBe(201);
    const other = Buffer.from('other bytes');
    const bad = await req(`/v2/lab/mono/blobs/uploads/?digest=${sha256(other)}`, { method: 'POST', body: bytes });
    expect(bad.status).toBe(400);
    expect(await code(bad)).toBe('DIGEST_INVALID');
    expect((await req(`/v2/lab/mono/blobs/${sha256(other)}`, { method: 'HEAD' })).status).toBe(404);
    expect((await req(`/v2/lab/mono/blobs/${sha256(bytes)}`, { method: 'HEAD' })).headers.get('content-length')).toBe(String(bytes.length));
  });

  it('cancels an upload with DELETE', async () => {
    const location = (await req('/v2/lab/cancel/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(location, { method: 'DELETE' })).status).toBe(204);
    const res = await req(location, { method: 'PATCH', body: 'late' });
    expect(res.status).toBe(404);
    expect(await code(res)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('continues an upload only through the repository that opened it', async () => {
    const location = (await req('/v2/lab/owner/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    const stolen = location.replace('/lab/owner/', '/lab/thief/');
    expect((await req(stolen)).status).toBe(404);
  });

  it('mounts a blob from a repository that holds it (201), and opens a session when it does not (202)', async () => {
    const mounted = await req(`/v2/lab/mounted/blobs/uploads/?mount=${digest}&from=lab/chunks`, { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/lab/mounted/blobs/${digest}`);
    expect((await req(`/v2/lab/mounted/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    const unknown = sha256(Buffer.from('nobody has this'));
    const session = await req(`/v2/lab/mounted/blobs/uploads/?mount=${unknown}&from=lab/chunks`, { method: 'POST' });
    expect(session.status).toBe(202);
    expect(session.headers.get('location')).toMatch(/\/blobs\/uploads\//);
  });

  it('serves a blob only to repositories that link it: knowing the digest is not enough', async () => {
    const res = await req(`/v2/lab/stranger/blobs/${digest}`);
    expect(res.status).toBe(404);
    expect(await code(res)).toBe('BLOB_UNKNOWN');
    // Nor through an upstream's name: the mirror asks the upstream, which does not have it.
    const viaMirror = await req(`/v2/library/anything/blobs/${digest}`);
    expect(viaMirror.status).toBe(404);
    expect(await code(viaMirror)).toBe('BLOB_UNKNOWN');
    const manifest = await req(`/v2/library/anything/manifests/${image.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(404);
  });

  it('accepts a manifest only when its blobs are in the repository, and answers with Location and digest', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] }),
    );
    const missing = await req('/v2/lab/manifests/manifests/v1', { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(missing.status).toBe(404);
    expect(await code(missing)).toBe('MANIFEST_BLOB_UNKNOWN');
    expect((await req(`/v2/lab/manifests/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: config })).status).toBe(201);
    const put = await req('/v2/lab/manifests/manifests/v1?tag=v1.0&tag=latest', { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(manifest));
    expect(put.headers.get('location')).toBe(`/v2/lab/manifests/manifests/${sha256(manifest)}`);
    const tags = (await (await req('/v2/lab/manifests/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['latest', 'v1', 'v1.0']);
    // Stored exactly as sent, with its media type.
    const got = await req('/v2/lab/manifests/manifests/v1.0');
    expect(got.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(Buffer.from(await got.arrayBuffer()).equals(manifest)).toBe(true);

    const byWrongDigest = await req(`/v2/lab/manifests/manifests/${sha256(Buffer.from('x'))}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(byWrongDigest.status).toBe(400);
    expect(await code(byWrongDigest)).toBe('DIGEST_INVALID');

    const subject = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length },
      }),
    );
    const withSubject = await req(`/v2/lab/manifests/manifests/${sha256(subject)}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: subject });
    expect(withSubject.status).toBe(201);
    expect(withSubject.headers.get('oci-subject')).toBe(sha256(manifest));
  });

  it('refuses manifests over 4 MiB with 413, bad JSON and unknown media types with MANIFEST_INVALID', async () => {
    const big = await req('/v2/lab/big/manifests/1', { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) });
    expect(big.status).toBe(413);
    const json = await req('/v2/lab/big/manifests/1', { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: '{not json' });
    expect(json.status).toBe(400);
    expect(await code(json)).toBe('MANIFEST_INVALID');
    const type = await req('/v2/lab/big/manifests/1', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(await code(type)).toBe('MANIFEST_INVALID');
  });

  it('answers an impossible tag with 404 MANIFEST_UNKNOWN, for hosted and mirrored names alike', async () => {
    for (const path of ['/v2/lab/app/manifests/.INVALID_MANIFEST_NAME', '/v2/library/alpine/manifests/.INVALID_MANIFEST_NAME']) {
      const res = await req(path);
      expect(res.status, path).toBe(404);
      expect(await code(res), path).toBe('MANIFEST_UNKNOWN');
    }
    const digest = await req('/v2/lab/app/manifests/sha256:totallywrong');
    expect(digest.status).toBe(400);
  });

  it('pages tags/list with n, last and a Link header', async () => {
    const first = await req('/v2/lab/manifests/tags/list?n=2');
    expect(((await first.json()) as { tags: string[] }).tags).toEqual(['latest', 'v1']);
    expect(first.headers.get('link')).toBe('</v2/lab/manifests/tags/list?n=2&last=v1>; rel="next"');
    const second = await req('/v2/lab/manifests/tags/list?n=2&last=v1');
    expect(((await second.json()) as { tags: string[] }).tags).toEqual(['v1.0']);
    expect(second.headers.get('link')).toBeNull();
  });

  it('deletes a tag, then the manifest by digest, and unlinks a blob', async () => {
    const digestOfV1 = (await req('/v2/lab/manifests/manifests/v1', { method: 'HEAD' })).headers.get('docker-content-digest')!;
    expect((await req('/v2/lab/manifests/manifests/latest', { method: 'DELETE' })).status).toBe(202);
    expect(((await (await req('/v2/lab/manifests/tags/list')).json()) as { tags: string[] }).tags).toEqual(['v1', 'v1.0']);
    expect((await req(`/v2/lab/manifests/manifests/${digestOfV1}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req('/v2/lab/manifests/manifests/v1')).status).toBe(404);
    expect((await req(`/v2/lab/manifests/manifests/${digestOfV1}`, { method: 'DELETE' })).status).toBe(404);
    expect((await req(`/v2/lab/mounted/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/lab/mounted/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    expect((await req(`/v2/lab/chunks/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });

  it('deletes with skopeo delete: the tag leaves tags/list and the manifest is gone by digest', async () => {
    const victim = await buildImage(join(work, 'victim'), { tag: '1', layers: [{ files: { victim: 'yes\n' } }] });
    await skopeoCopy(victim.ociRef, `docker://${mirror.host}/lab/victim:1`);
    await skopeoCopy(victim.ociRef, `docker://${mirror.host}/lab/victim:keep-me-not`);
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/victim:other`);
    await runCommand(requireBinary('skopeo', 'skopeo'), ['delete', '--tls-verify=false', `docker://${mirror.host}/lab/victim:1`]);
    // skopeo deletes by digest: every tag of that manifest goes, the other image's tag stays.
    expect(((await (await req('/v2/lab/victim/tags/list')).json()) as { tags: string[] }).tags).toEqual(['other']);
    const gone = await req(`/v2/lab/victim/manifests/${victim.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
    expect(gone.status).toBe(404);
    expect(await code(gone)).toBe('MANIFEST_UNKNOWN');
    expect((await req('/v2/lab/victim/manifests/other', { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).status).toBe(200);
  });

  it('refuses pushes to a mirrored name while overrides are off, naming the setting', async () => {
    const res = await req('/v2/library/alpine/blobs/uploads/', { method: 'POST' });
    expect(res.status).toBe(405);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('UNSUPPORTED');
    expect(body.errors[0]!.message).toContain('overrides: true');
  });
});
