import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from './binaries.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { buildImage, buildIndex, manifestDigestOf, pushImage, skopeoCopy, skopeoInspect, type BuiltImage } from './images.ts';
import { freePort } from './ports.ts';
import { startProcess } from './process.ts';
import { startRedis } from './redis.ts';
import { startRegistry, type RunningRegistry } from './registry.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';
import { startTokenIssuer } from './token-issuer.ts';

const SLOW = { timeout: 120_000 };

describe('test support', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let work: string;
  let registry: RunningRegistry;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await makeTempDir('support-test');
    cleanups.push(() => removeTempDir(work));
    registry = await startRegistry();
    cleanups.push(() => registry.dispose());
    image = await buildImage(join(work, 'layout'), {
      tag: 'three',
      layers: [{ files: { 'etc/motd': 'hello\n', 'usr/share/doc/a.txt': 'a' } }, { randomBytes: 4096 }, { randomBytes: 100_000, seed: 's' }],
    });
  }, 120_000);

  afterAll(async () => {
    // Every cleanup runs even if an earlier one fails.
    const results = await Promise.allSettled(cleanups.reverse().map((cleanup) => cleanup()));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }, 60_000);

  it('explains how to install a missing program', () => {
    expect(requireBinary('skopeo', 'skopeo')).toMatch(/^\/.*skopeo$/);
    expect(() => requireBinary('no-such-program-xyz', 'xyz-utils')).toThrow(/apt-get install -y xyz-utils.*scripts\/test-deps\.sh/);
  });

  it('fails to wait for a process with its captured output in the error', async () => {
    const child = startProcess({ command: 'sh', args: ['-c', 'echo starting up; echo oops >&2; exec sleep 30'] });
    await expect(child.waitReady({ output: 'never printed' }, 500)).rejects.toThrow(/not ready after 500 ms[\s\S]*starting up[\s\S]*oops/);
    expect(await child.stop()).toMatchObject({ signal: 'SIGTERM' });
    const early = startProcess({ command: 'sh', args: ['-c', 'echo bye; exit 3'] });
    await expect(early.waitReady({ tcp: { port: await freePort() } })).rejects.toThrow(/exited \(code 3[\s\S]*bye/);
  });

  it('builds layers deterministically, and 100 MB of random layer cheaply', SLOW, async () => {
    const again = await buildImage(join(work, 'again'), {
      tag: 'three',
      layers: [{ files: { 'etc/motd': 'hello\n', 'usr/share/doc/a.txt': 'a' } }, { randomBytes: 4096 }, { randomBytes: 100_000, seed: 's' }],
    });
    expect(again.manifestDigest).toBe(image.manifestDigest);
    const started = Date.now();
    const big = await buildImage(join(work, 'big'), { tag: 'big', layers: [{ randomBytes: 100 * 1024 * 1024 }] });
    expect(Date.now() - started).toBeLessThan(10_000);
    const [layer] = big.layers;
    expect(layer?.size).toBeGreaterThan(100 * 1024 * 1024); // incompressible
    expect((await stat(join(big.layoutDir, 'blobs', 'sha256', layer?.digest.slice(7) ?? ''))).size).toBe(layer?.size);
  });

  it('pushes an image and a two-platform index with the digests intact', SLOW, async () => {
    await pushImage(image, registry, 'support/three:v1');
    expect(await manifestDigestOf(`docker://${registry.host}/support/three:v1`)).toBe(image.manifestDigest);
    const info = await skopeoInspect(`docker://${registry.host}/support/three:v1`);
    expect(info.Layers).toEqual(image.layers.map((layer) => layer.digest));

    const index = await buildIndex(join(work, 'layout'), {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64', layers: [{ files: { 'arch.txt': 'amd64' } }] },
        { os: 'linux', architecture: 'arm64', layers: [{ files: { 'arch.txt': 'arm64' } }, { randomBytes: 1000 }] },
      ],
    });
    await pushImage(index, registry, 'support/multi:v1', { all: true });
    expect(await manifestDigestOf(`docker://${registry.host}/support/multi:v1`)).toBe(index.indexDigest);
    for (const manifest of index.manifests) {
      expect(await manifestDigestOf(`docker://${registry.host}/support/multi@${manifest.manifestDigest}`)).toBe(manifest.manifestDigest);
    }

    // Uncompressed layers too: pushImage keeps skopeo from compressing them.
    const plain = await buildImage(join(work, 'layout'), { tag: 'plain', layers: [{ files: { 'a.txt': 'a' }, compress: false }] });
    expect(plain.layers[0]?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    await skopeoCopy(plain.ociRef, `docker://${registry.host}/support/plain:v1`, { preserveDigests: true });
    expect(await manifestDigestOf(`docker://${registry.host}/support/plain:v1`)).toBe(plain.manifestDigest);

    await registry.settle();
    const requests = registry.requests();
    expect(requests).toContainEqual({ method: 'PUT', path: '/v2/support/multi/manifests/v1', status: 201 });
    registry.clearRequests();
    expect(registry.requests()).toEqual([]);
  });

  it('converts to Docker schema 2 keeping config and layer digests', SLOW, async () => {
    await pushImage(image, registry, 'support/docker:v1', { format: 'v2s2' });
    const raw = JSON.parse(await skopeoInspect(`docker://${registry.host}/support/docker:v1`, { raw: true })) as {
      mediaType: string;
      config: { digest: string };
      layers: Array<{ digest: string; mediaType: string }>;
    };
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(raw.config.digest).toBe(image.configDigest);
    expect(raw.layers.map((layer) => layer.digest)).toEqual(image.layers.map((layer) => layer.digest));
    expect(raw.layers[0]?.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('restarts a registry on the same port with its data', SLOW, async () => {
    await pushImage(image, registry, 'support/restart:v1');
    await registry.stop();
    await registry.start();
    expect(await manifestDigestOf(`docker://${registry.host}/support/restart:v1`)).toBe(image.manifestDigest);
  });

  it('runs a pull-through registry in front of another', SLOW, async () => {
    await pushImage(image, registry, 'support/cached:v1');
    const mirror = await startRegistry({ proxy: { remoteUrl: registry.url } });
    cleanups.push(() => mirror.dispose());
    expect(await manifestDigestOf(`docker://${mirror.host}/support/cached:v1`)).toBe(image.manifestDigest);
    await registry.settle();
    expect(registry.requests()).toContainEqual({ method: 'GET', path: '/v2/support/cached/manifests/v1', status: 200 });
  });

  it('runs an htpasswd registry that needs credentials', SLOW, async () => {
    const secured = await startRegistry({ auth: { kind: 'htpasswd', username: 'alice', password: 's3cret' } });
    cleanups.push(() => secured.dispose());
    await expect(pushImage(image, secured, 'private/app:v1')).rejects.toThrow(/unauthorized|authentication required/i);
    await pushImage(image, secured, 'private/app:v1', { destCreds: 'alice:s3cret' });
    const ref = `docker://${secured.host}/private/app:v1`;
    expect(await manifestDigestOf(ref, { creds: 'alice:s3cret' })).toBe(image.manifestDigest);
    await expect(manifestDigestOf(ref)).rejects.toThrow(/unauthorized|authentication required/i);
    await expect(manifestDigestOf(ref, { creds: 'alice:wrong' })).rejects.toThrow(/unauthorized|authentication required/i);
    await secured.settle();
    expect(secured.requests().filter((request) => request.status === 401).length).toBeGreaterThan(0);
  });

  it('runs a token registry that accepts only tokens from its issuer', SLOW, async () => {
    const issuer = await startTokenIssuer({ users: { bob: 'hunter2' } });
    cleanups.push(() => issuer.stop());
    const secured = await startRegistry({ auth: { kind: 'token', issuer } });
    cleanups.push(() => secured.dispose());
    await expect(pushImage(image, secured, 'team/app:v1')).rejects.toThrow(/unauthorized|authentication required/i);
    await pushImage(image, secured, 'team/app:v1', { destCreds: 'bob:hunter2' });
    const ref = `docker://${secured.host}/team/app:v1`;
    expect(await manifestDigestOf(ref, { creds: 'bob:hunter2' })).toBe(image.manifestDigest);
    await expect(manifestDigestOf(ref)).rejects.toThrow(/unauthorized|authentication required/i);
    expect(issuer.issued()).toContainEqual({ scope: 'repository:team/app:pull,push', user: 'bob' });

    // A token the registry verifies for real: tampering with its claims gives 401.
    const scope = 'repository:team/app:pull';
    const tokenResponse = await fetch(`${issuer.realm}?service=${issuer.service}&scope=${scope}`, {
      headers: { authorization: `Basic ${Buffer.from('bob:hunter2').toString('base64')}` },
    });
    const { token } = (await tokenResponse.json()) as { token: string };
    const manifestUrl = `${secured.url}/v2/team/app/manifests/v1`;
    const accept = 'application/vnd.oci.image.manifest.v1+json';
    const ok = await fetch(manifestUrl, { headers: { authorization: `Bearer ${token}`, accept } });
    expect(ok.status).toBe(200);
    expect(`sha256:${createHash('sha256').update(Buffer.from(await ok.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest);
    const [header, claims, signature] = token.split('.');
    const forged = JSON.parse(Buffer.from(claims ?? '', 'base64url').toString()) as { access: Array<{ name: string }> };
    forged.access[0]!.name = 'team/other';
    const tampered = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
    const denied = await fetch(`${secured.url}/v2/team/other/manifests/v1`, { headers: { authorization: `Bearer ${tampered}` } });
    expect(denied.status).toBe(401);
  });

  it('runs redis on loopback and restarts it on the same port', SLOW, async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.dispose());
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await ping(redis.port)).toBe('+PONG\r\n');
    await redis.stop();
    await redis.start();
    expect(await ping(redis.port)).toBe('+PONG\r\n');
  });

  it('fault proxy corrupts blobs, injects statuses and counts requests', SLOW, async () => {
    const proxy = await startFaultProxy(registry.url, { fault: 'flip-byte' });
    cleanups.push(() => proxy.stop());
    const layer = image.layers[2]!;
    const blobPath = `/v2/support/three/blobs/${layer.digest}`;
    const sha256 = async (response: Response): Promise<string> =>
      `sha256:${createHash('sha256').update(Buffer.from(await response.arrayBuffer())).digest('hex')}`;

    const corrupted = await fetch(`${proxy.url}${blobPath}`);
    expect(corrupted.status).toBe(200);
    expect(await sha256(corrupted)).not.toBe(layer.digest);

    proxy.setFault('none');
    expect(await sha256(await fetch(`${proxy.url}${blobPath}`))).toBe(layer.digest);

    proxy.setFault({ status: 503, times: 2, retryAfter: '1' });
    const first = await fetch(`${proxy.url}/v2/`);
    expect([first.status, first.headers.get('retry-after')]).toEqual([503, '1']);
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(503);
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);

    proxy.setFault('reset-mid-blob');
    await expect(fetch(`${proxy.url}${blobPath}`).then((response) => response.arrayBuffer())).rejects.toThrow();

    expect(proxy.requests().map((request) => request.status)).toEqual([200, 200, 503, 503, 200, 200]);
    proxy.clearRequests();
    expect(proxy.requests()).toEqual([]);
  });
});

function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(5_000, () => socket.destroy(new Error('redis PING timed out')));
    socket.once('error', reject);
    socket.once('data', (data) => {
      resolve(data.toString());
      socket.end();
    });
    socket.write('PING\r\n');
  });
}
