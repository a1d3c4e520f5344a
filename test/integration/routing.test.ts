// Two upstreams at once, chosen by containerd's ?ns=, by the Host header (DNS-spoof mode) and by a path
// prefix; anything else goes to the default, and nothing in a request can name a host to dial.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildImage, manifestDigestOf, pushImage, type BuiltImage } from '../support/images.ts';
import { errorCode, rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

describe('routing between two upstreams', () => {
  let work: string;
  let hub: RunningRegistry;
  let lab: RunningRegistry;
  let hubImage: BuiltImage;
  let labImage: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('routing-test');
    [hub, lab] = await Promise.all([startRegistry(), startRegistry()]);
    hubImage = await buildImage(join(work, 'hub'), { tag: 'v1', layers: [{ files: { hub: 'yes' } }] });
    labImage = await buildImage(join(work, 'lab'), { tag: 'v1', layers: [{ files: { lab: 'yes' } }] });
    await pushImage(hubImage, hub, 'library/alpine:3.8');
    await pushImage(labImage, lab, 'org/app:v1');
    mirror = await startMirror({
      upstreams: [
        { name: 'docker.io', url: hub.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true },
        { name: 'lab', url: lab.url, aliases: ['lab.example', 'ghcr.io'] },
      ],
    });
  }, 300_000);

  afterAll(async () => {
    await mirror?.dispose();
    await Promise.all([hub?.dispose(), lab?.dispose()]);
    if (work) await removeTempDir(work);
  });

  const manifest = (path: string, headers: Record<string, string> = {}) => rawRequest(mirror.url, { path, headers: { accept: ACCEPT, ...headers } });

  it('routes by ?ns= and echoes the namespace in OCI-Namespace', async () => {
    const fromLab = await manifest('/v2/org/app/manifests/v1?ns=lab.example');
    expect(fromLab.status).toBe(200);
    expect(fromLab.headers['docker-content-digest']).toBe(labImage.manifestDigest);
    expect(fromLab.headers['oci-namespace']).toBe('lab');
    const fromHub = await manifest('/v2/alpine/manifests/3.8?ns=docker.io');
    expect(fromHub.headers['docker-content-digest']).toBe(hubImage.manifestDigest);
    expect(fromHub.headers['oci-namespace']).toBe('docker.io');
  });

  it('routes by the Host header of DNS-spoof mode, with or without the default port', async () => {
    for (const host of ['ghcr.io', 'ghcr.io:443', 'lab.example']) {
      const res = await manifest('/v2/org/app/manifests/v1', { host });
      expect(res.status, host).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(labImage.manifestDigest);
    }
  });

  it('routes by path prefix, for skopeo and docker users', async () => {
    expect(await manifestDigestOf(`docker://${mirror.host}/lab.example/org/app:v1`)).toBe(labImage.manifestDigest);
    expect(await manifestDigestOf(`docker://${mirror.host}/docker.io/library/alpine:3.8`)).toBe(hubImage.manifestDigest);
  }, 60_000);

  it('strips a path prefix that names the ns upstream (containerd override_path mirrors)', async () => {
    const res = await manifest('/v2/lab.example/org/app/manifests/v1?ns=lab.example');
    expect(res.headers['docker-content-digest']).toBe(labImage.manifestDigest);
  });

  it('sends a Host that is no alias (the mirror’s own name) to the default upstream, never dialling it', async () => {
    await hub.settle();
    hub.clearRequests();
    // A loopback address nobody listens on: even a wrong implementation could not leave the machine.
    const res = await manifest('/v2/alpine/manifests/3.8', { host: '127.0.0.3:1' });
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(hubImage.manifestDigest);
    expect(res.headers['oci-namespace']).toBe('docker.io');
  });

  it('refuses an unknown ns with NAME_UNKNOWN and contacts no upstream', async () => {
    await Promise.all([hub.settle(), lab.settle()]);
    hub.clearRequests();
    lab.clearRequests();
    const res = await manifest('/v2/alpine/manifests/3.8?ns=evil.example.com');
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('NAME_UNKNOWN');
    await Promise.all([hub.settle(), lab.settle()]);
    expect(hub.requests()).toEqual([]);
    expect(lab.requests()).toEqual([]);
  });
});
