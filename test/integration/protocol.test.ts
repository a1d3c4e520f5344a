// Protocol details a real registry gets right: Accept negotiation per client class, tags/list paging,
// the catalog of cached repositories, health and metrics endpoints.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildImage, pushImage } from '../support/images.ts';
import { rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

describe('registry protocol details', () => {
  let work: string;
  let registry: RunningRegistry;
  let content: SeededContent;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('protocol-test');
    registry = await startRegistry();
    content = await buildAndPush(registry, work);
    for (const tag of ['a', 'b', 'c', 'd', 'e']) {
      await pushImage(await buildImage(join(work, `t-${tag}`), { tag, layers: [{ files: { tag } }] }), registry, `library/tagged:${tag}`);
    }
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  }, 300_000);

  afterAll(async () => {
    await mirror?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  const manifest = (base: string, accept: string) => rawRequest(base, { path: '/v2/library/multi/manifests/1', headers: { accept } });

  it('never hands a cached index to a client whose Accept lacks index types, and answers as the upstream does', async () => {
    const index = await manifest(mirror.url, `${OCI_INDEX}, ${OCI_MANIFEST}, ${DOCKER_LIST}, ${DOCKER_MANIFEST}`);
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe(OCI_INDEX);
    expect(index.headers['docker-content-digest']).toBe(content.multi.indexDigest);
    for (const accept of [OCI_MANIFEST, DOCKER_MANIFEST, `${OCI_MANIFEST}, ${DOCKER_MANIFEST}`]) {
      const viaMirror = await manifest(mirror.url, accept);
      const direct = await manifest(registry.url, accept);
      expect(viaMirror.headers['content-type'], accept).not.toBe(OCI_INDEX);
      expect(viaMirror.status, accept).toBe(direct.status);
      expect(viaMirror.headers['docker-content-digest'], accept).toBe(direct.headers['docker-content-digest']);
    }
    const again = await manifest(mirror.url, `${OCI_INDEX}, ${OCI_MANIFEST}`);
    expect(again.headers['docker-content-digest']).toBe(content.multi.indexDigest);
  });

  it('serves a platform manifest of an index by digest', async () => {
    const amd64 = content.multi.manifests[0]!.manifestDigest;
    const res = await rawRequest(mirror.url, { path: `/v2/library/multi/manifests/${amd64}`, headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(amd64);
  });

  it('passes tags/list through with n and last, as the upstream answers', async () => {
    for (const query of ['', '?n=2', '?n=2&last=a']) {
      const viaMirror = await rawRequest(mirror.url, { path: `/v2/library/tagged/tags/list${query}` });
      const direct = await rawRequest(registry.url, { path: `/v2/library/tagged/tags/list${query}` });
      expect(viaMirror.status, query).toBe(200);
      expect(JSON.parse(viaMirror.body.toString()), query).toEqual(JSON.parse(direct.body.toString()));
      expect(viaMirror.headers.link, query).toBe(direct.headers.link);
    }
    const all = JSON.parse((await rawRequest(mirror.url, { path: '/v2/library/tagged/tags/list' })).body.toString());
    expect([...all.tags].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    // docker-registry 2.8 sends no Link header on tags/list; the rewrite of upstream links is unit-tested.
  });

  it('serves tags/list from cache while the upstream is down', async () => {
    await registry.stop();
    try {
      const res = await rawRequest(mirror.url, { path: '/v2/library/tagged/tags/list' });
      expect(res.status).toBe(200);
      expect([...JSON.parse(res.body.toString()).tags].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    } finally {
      await registry.start();
    }
  });

  it('lists cached repositories in /v2/_catalog with paging', async () => {
    await rawRequest(mirror.url, { path: '/v2/library/alpine/manifests/3.8', headers: { accept: OCI_MANIFEST } });
    const res = await rawRequest(mirror.url, { path: '/v2/_catalog' });
    expect(JSON.parse(res.body.toString()).repositories).toContain('library/multi');
    const page = await rawRequest(mirror.url, { path: '/v2/_catalog?n=1' });
    expect(JSON.parse(page.body.toString()).repositories).toHaveLength(1);
    expect(page.headers.link).toMatch(/rel="next"/);
  });

  it('answers /v2/ with the API version header, /healthz, /readyz and /metrics', async () => {
    const base = await rawRequest(mirror.url, { path: '/v2/' });
    expect(base.status).toBe(200);
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect((await rawRequest(mirror.url, { path: '/healthz' })).status).toBe(200);
    const ready = await rawRequest(mirror.url, { path: '/readyz' });
    expect(JSON.parse(ready.body.toString())).toMatchObject({ status: 'ready', checks: { dataDir: 'ok' } });
    const metrics = (await rawRequest(mirror.url, { path: '/metrics' })).body.toString();
    expect(metrics).toMatch(/ocimirror_http_requests_total\{route="manifest",method="GET",code="200"\} \d+/);
    expect(metrics).toMatch(/ocimirror_cache_lookups_total\{kind="tag",result="miss"\} \d+/);
    expect(metrics).toMatch(/ocimirror_upstream_received_bytes_total\{upstream="docker.io"\} \d+/);
    expect(metrics).not.toMatch(/library\/multi|sha256:/);
  });

  it('logs one access line per request with cache result and duration', async () => {
    await rawRequest(mirror.url, { path: '/v2/library/multi/manifests/1', headers: { accept: OCI_INDEX } });
    await rawRequest(mirror.url, { path: '/v2/library/multi/manifests/1', headers: { accept: OCI_INDEX } });
    const line = mirror.logs().reverse().find((l) => l.msg === 'request' && l.route === 'manifest');
    expect(line).toMatchObject({ method: 'GET', status: 200, upstream: 'docker.io', repo: 'library/multi', cache: 'hit' });
    expect(typeof line!.duration_ms).toBe('number');
  });
});
