// The referrers API (distribution-spec v1.1): SBOMs and signatures pushed with a `subject` are listed for
// hosted repositories; for mirrored ones the upstream's answer is passed on, and where the upstream (here a
// real docker-registry 2.8, which has no referrers API, like Docker Hub) answers 404 the `sha256-<hex>`
// tag stands in; overrides list both. cosign's `sha256-<hex>.sig` tags pass through as ordinary tags.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';
const SBOM = 'application/spdx+json';
const SIGNATURE = 'application/vnd.example.signature.v1+json';
/** The mirrored upstream's tag TTL: long enough for two requests in a row, short enough to wait out. */
const TAG_TTL_MS = 3_000;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let mirrorDataDir: string;
let image: BuiltImage;

const upstreams = [
  { name: 'docker.io', url: '', aliases: ['docker.io'], default: true, tagTtl: `${TAG_TTL_MS}ms` },
  { name: 'quay.io', url: '', aliases: ['quay.io'], overrides: true },
];
const mirrorConfig = () => ({
  hosted: { namespaces: ['lab'] },
  upstreamRetries: 0,
  upstreams: upstreams.map((u) => ({ ...u, url: registry.url })),
  dataDir: mirrorDataDir,
});

beforeAll(async () => {
  work = await makeTempDir('referrers-test');
  mirrorDataDir = join(work, 'mirror-data');
  registry = await startRegistry();
  mirror = await startMirror(mirrorConfig());
  image = await buildImage(join(work, 'img'), { tag: '1', layers: [{ files: { 'etc/app': 'signed and attested\n' } }] });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const referrersTag = (digest: string) => digest.replace(':', '-');
const code = async (res: Response) => ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;

/** Uploads a blob to `base` (the mirror or the upstream) in one PUT. */
async function pushBlob(base: string, repo: string, bytes: Uint8Array): Promise<void> {
  const started = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(started.status, await started.clone().text()).toBe(202);
  const location = new URL(started.headers.get('location')!, base);
  location.searchParams.set('digest', sha256(bytes));
  const done = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  expect(done.status, await done.clone().text()).toBe(201);
}

async function pushManifest(base: string, repo: string, reference: string, body: Uint8Array, mediaType = OCI_MANIFEST): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body });
  expect(res.status, await res.clone().text()).toBe(201);
  return sha256(body);
}

interface Artifact {
  body: Buffer;
  descriptor: Descriptor;
}

/**
 * An OCI 1.1 artifact (empty config, one layer) pushed to base/repo by digest, with `subject` = the image:
 * its blobs first, then the manifest.
 */
async function pushArtifact(base: string, repo: string, options: { artifactType: string; content: string; annotations: Record<string, string>; subject?: boolean }): Promise<Artifact> {
  const empty = Buffer.from('{}');
  const content = Buffer.from(options.content);
  await pushBlob(base, repo, empty);
  await pushBlob(base, repo, content);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: options.artifactType,
      config: { mediaType: EMPTY, digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: options.artifactType, digest: sha256(content), size: content.length }],
      ...(options.subject === false ? {} : { subject: { mediaType: OCI_MANIFEST, digest: image.manifestDigest, size: image.manifestSize } }),
      annotations: options.annotations,
    }),
  );
  const digest = await pushManifest(base, repo, sha256(body), body);
  return { body, descriptor: { mediaType: OCI_MANIFEST, digest, size: body.length, artifactType: options.artifactType, annotations: options.annotations } };
}

/** The tag-schema index an OCI 1.1 client writes on a registry without the referrers API. */
async function pushTagSchemaIndex(repo: string, referrers: Descriptor[]): Promise<void> {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers }));
  await pushManifest(registry.url, repo, referrersTag(image.manifestDigest), index, OCI_INDEX);
}

async function referrers(path: string): Promise<{ res: Response; manifests: Descriptor[] }> {
  const res = await fetch(`${mirror.url}${path}`);
  expect(res.status, path).toBe(200);
  const body = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  expect(res.headers.get('content-type')).toBe(OCI_INDEX);
  expect(body.schemaVersion).toBe(2);
  expect(body.mediaType).toBe(OCI_INDEX);
  return { res, manifests: body.manifests };
}

const byDigest = (list: Descriptor[]) => [...list].sort((a, b) => a.digest.localeCompare(b.digest));

describe('referrers of a hosted repository', () => {
  let sbom: Artifact;
  let signature: Artifact;

  beforeAll(async () => {
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/signed:1`, { preserveDigests: true });
    sbom = await pushArtifact(mirror.url, 'lab/signed', { artifactType: SBOM, content: '{"spdxVersion":"SPDX-2.3"}', annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' } });
    signature = await pushArtifact(mirror.url, 'lab/signed', { artifactType: SIGNATURE, content: 'signature bytes', annotations: { 'org.example.signer': 'ci' } });
  }, 120_000);

  it('lists every manifest whose subject is the image, with artifactType and annotations', async () => {
    const { res, manifests } = await referrers(`/v2/lab/signed/referrers/${image.manifestDigest}`);
    expect(res.headers.get('oci-filters-applied')).toBeNull();
    expect(byDigest(manifests)).toEqual(byDigest([sbom.descriptor, signature.descriptor]));
  });

  it('filters by artifactType and says so in OCI-Filters-Applied', async () => {
    const { res, manifests } = await referrers(`/v2/lab/signed/referrers/${image.manifestDigest}?artifactType=${encodeURIComponent(SBOM)}`);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(manifests).toEqual([sbom.descriptor]);
  });

  it('answers 200 with an empty list for an unknown subject or repository, 400 for a malformed digest', async () => {
    expect((await referrers(`/v2/lab/signed/referrers/${sha256(Buffer.from('nothing refers to this'))}`)).manifests).toEqual([]);
    expect((await referrers(`/v2/lab/nobody/referrers/${image.manifestDigest}`)).manifests).toEqual([]);
    const bad = await fetch(`${mirror.url}/v2/lab/signed/referrers/sha256:nothex`);
    expect(bad.status).toBe(400);
    expect(await code(bad)).toBe('DIGEST_INVALID');
  });

  it('no longer lists a referrer once its manifest is deleted', async () => {
    expect((await fetch(`${mirror.url}/v2/lab/signed/manifests/${signature.descriptor.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await referrers(`/v2/lab/signed/referrers/${image.manifestDigest}`)).manifests).toEqual([sbom.descriptor]);
  });

  it('is passed on by a mirror in front (an upstream with the referrers API), filter included', async () => {
    const front = await startMirror({ hosted: { namespaces: ['local'] }, upstreams: [{ name: 'inner', url: mirror.url, default: true }] });
    try {
      const path = `/v2/lab/signed/referrers/${image.manifestDigest}`;
      const asked = () => mirror.logs().filter((l) => l.route === 'referrers' && l.path === path).length;
      const before = asked();
      for (const cache of ['miss', 'hit']) {
        const res = await fetch(`${front.url}${path}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-ocimirror-cache')).toBe(cache);
        expect(((await res.json()) as { manifests: Descriptor[] }).manifests).toEqual([sbom.descriptor]);
      }
      expect(asked()).toBe(before + 1);
      const filtered = await fetch(`${front.url}${path}?artifactType=${encodeURIComponent(SIGNATURE)}`);
      expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(((await filtered.json()) as { manifests: Descriptor[] }).manifests).toEqual([]);
    } finally {
      await front.dispose();
    }
  });
});

describe('referrers of a mirrored repository (upstream without the referrers API)', () => {
  const repo = 'library/signed';
  let cosignSignature: Buffer;
  let sbom: Artifact;

  beforeAll(async () => {
    await pushImage(image, registry, `${repo}:1`);
    // cosign's own scheme: a plain manifest under the tag sha256-<hex>.sig.
    const payload = Buffer.from('{"critical":{"image":{"docker-manifest-digest":"x"}}}');
    const config = Buffer.from('{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}');
    await pushBlob(registry.url, repo, payload);
    await pushBlob(registry.url, repo, config);
    cosignSignature = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha256(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ' } }],
      }),
    );
    await pushManifest(registry.url, repo, `${referrersTag(image.manifestDigest)}.sig`, cosignSignature);
    // OCI 1.1's fallback: the SBOM by digest, and an index of the referrers under the tag sha256-<hex>.
    sbom = await pushArtifact(registry.url, repo, { artifactType: SBOM, content: '{"spdxVersion":"SPDX-2.3","name":"upstream"}', annotations: { 'org.example.from': 'upstream' } });
    await pushTagSchemaIndex(repo, [sbom.descriptor]);
  }, 120_000);

  it("passes cosign's sha256-<hex>.sig tag through as an ordinary tag, blobs included", async () => {
    const res = await fetch(`${mirror.url}/v2/${repo}/manifests/${referrersTag(image.manifestDigest)}.sig`, { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(sha256(cosignSignature));
    expect(Buffer.from(await res.arrayBuffer()).equals(cosignSignature)).toBe(true);
    const doc = JSON.parse(cosignSignature.toString()) as { config: Descriptor; layers: Descriptor[] };
    for (const blob of [doc.config, ...doc.layers]) {
      const got = await fetch(`${mirror.url}/v2/${repo}/blobs/${blob.digest}`);
      expect(got.status).toBe(200);
      expect(sha256(new Uint8Array(await got.arrayBuffer()))).toBe(blob.digest);
    }
  });

  it('answers from the sha256-<hex> tag when the upstream answers 404, then from cache within the tag TTL', async () => {
    await registry.settle();
    registry.clearRequests();
    const first = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}`);
    expect(first.manifests).toEqual([sbom.descriptor]);
    expect(first.res.headers.get('x-ocimirror-cache')).toBe('miss');
    await registry.settle();
    const asked = registry.requests().map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(asked).toContain(`GET /v2/${repo}/referrers/${image.manifestDigest} 404`);
    expect(asked).toContain(`GET /v2/${repo}/manifests/${referrersTag(image.manifestDigest)} 200`);

    registry.clearRequests();
    const second = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}`);
    expect(second.manifests).toEqual([sbom.descriptor]);
    expect(second.res.headers.get('x-ocimirror-cache')).toBe('hit');
    await registry.settle();
    expect(registry.requests()).toEqual([]);
  });

  it('filters the upstream list by artifactType, and answers an empty list for a subject without referrers', async () => {
    const other = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}?artifactType=${encodeURIComponent(SIGNATURE)}`);
    expect(other.res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(other.manifests).toEqual([]);
    const same = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}?artifactType=${encodeURIComponent(SBOM)}`);
    expect(same.manifests).toEqual([sbom.descriptor]);
    expect((await referrers(`/v2/${repo}/referrers/${sha256(Buffer.from('no tag for this one'))}`)).manifests).toEqual([]);
  });

  it('serves the cached answer while the upstream is down, also after a restart of the mirror', async () => {
    await registry.stop();
    try {
      await sleep(TAG_TTL_MS + 200);
      const stale = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}`);
      expect(stale.manifests).toEqual([sbom.descriptor]);
      expect(stale.res.headers.get('x-ocimirror-cache')).toBe('stale');
      expect(stale.res.headers.get('warning')).toContain('110');
      // The in-memory answer is gone with the process; the cached sha256-<hex> tag still answers.
      await mirror.stop();
      mirror = await startMirror(mirrorConfig());
      const restarted = await referrers(`/v2/${repo}/referrers/${image.manifestDigest}`);
      expect(restarted.manifests).toEqual([sbom.descriptor]);
      expect(restarted.res.headers.get('x-ocimirror-cache')).toBe('stale');
      // Nothing cached for this subject: the failure is passed on, not an empty list.
      const unknown = await fetch(`${mirror.url}/v2/${repo}/referrers/${sha256(Buffer.from('never asked'))}`);
      expect(unknown.status).toBeGreaterThanOrEqual(500);
    } finally {
      await registry.start();
    }
  });
});

describe('referrers of an override (pushed over an upstream repository)', () => {
  const repo = 'org/app';
  let upstreamSbom: Artifact;
  let pushedSignature: Artifact;

  beforeAll(async () => {
    await pushImage(image, registry, `${repo}:1`);
    upstreamSbom = await pushArtifact(registry.url, repo, { artifactType: SBOM, content: '{"spdxVersion":"SPDX-2.3","name":"org/app"}', annotations: { 'org.example.from': 'upstream' } });
    // The same signature on both sides: listed once.
    const signatureOptions = { artifactType: SIGNATURE, content: 'lab signature', annotations: { 'org.example.signer': 'lab' } };
    const upstreamSignature = await pushArtifact(registry.url, repo, signatureOptions);
    await pushTagSchemaIndex(repo, [upstreamSbom.descriptor, upstreamSignature.descriptor]);
    pushedSignature = await pushArtifact(`${mirror.url}`, `quay.io/${repo}`, signatureOptions);
    expect(pushedSignature.descriptor.digest).toBe(upstreamSignature.descriptor.digest);
  }, 120_000);

  it("merges the pushed referrers with the upstream's, each digest once", async () => {
    const { manifests } = await referrers(`/v2/quay.io/${repo}/referrers/${image.manifestDigest}`);
    expect(byDigest(manifests)).toEqual(byDigest([upstreamSbom.descriptor, pushedSignature.descriptor]));
    const filtered = await referrers(`/v2/quay.io/${repo}/referrers/${image.manifestDigest}?artifactType=${encodeURIComponent(SBOM)}`);
    expect(filtered.res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(filtered.manifests).toEqual([upstreamSbom.descriptor]);
  });

  it('lists a pushed referrer the upstream does not have', async () => {
    const extra = await pushArtifact(mirror.url, `quay.io/${repo}`, { artifactType: 'application/vnd.example.attestation', content: 'attested', annotations: { 'org.example.kind': 'provenance' } });
    const { manifests } = await referrers(`/v2/quay.io/${repo}/referrers/${image.manifestDigest}`);
    expect(byDigest(manifests)).toEqual(byDigest([upstreamSbom.descriptor, pushedSignature.descriptor, extra.descriptor]));
  });
});
