// Bounds on what an upstream can make the mirror spend (issue 14, item 7): redirects and token realms
// to networks the upstream does not live in, connections per upstream, and blob downloads that drip.
// Upstreams are real docker-registry processes; the drip comes from the fault proxy in front of one.
// Everything here runs on loopback, where every upstream lives in the loopback network and may
// therefore send the mirror anywhere on it: the policy tests tell the client the upstream lives on
// the public internet (RegistryClient's upstreamHome), so that a loopback CDN or realm is "elsewhere".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigInput } from '../../src/config/schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import { UpstreamUnavailableError } from '../../src/upstream/errors.ts';
import { RegistryClient, type UpstreamResponse } from '../../src/upstream/registry-client.ts';
import { startCdn, type Cdn } from '../support/cdn.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.ts';

const TIMEOUTS = { connectMs: 5_000, responseMs: 10_000, idleMs: 10_000 };
const PASSWORD = 'limits-Secret-5';

let work: string;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('upstream-hardening-limits');
  image = await buildImage(join(work, 'img'), {
    tag: 'v1',
    layers: Array.from({ length: 6 }, (_, i) => ({ randomBytes: 150_000, seed: `limits-${i}` })),
  });
}, 120_000);

afterAll(async () => {
  if (work) await removeTempDir(work);
});

function clientFor(upstream: NonNullable<ConfigInput['upstreams']>[number], options: { publicUpstream: boolean }): RegistryClient {
  const config = parseConfig({ upstreams: [upstream] }, { env: {} });
  return new RegistryClient(config.upstreams[0]!, { timeouts: TIMEOUTS, retries: 0, ...(options.publicUpstream ? { upstreamHome: [] } : {}) });
}

async function bodyOf(res: UpstreamResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

const refused = (err: unknown) => err instanceof UpstreamUnavailableError && err.reason === 'refused' && /allowPrivateRedirects/.test(err.message);

describe('redirects and token realms outside the upstream\'s own network', () => {
  let registry: RunningRegistry;
  let cdn: Cdn;
  let byName: RunningRegistry;
  let cdnByName: Cdn;
  let issuer: TokenIssuer;
  let tokenRegistry: RunningRegistry;

  beforeAll(async () => {
    const dataDir = join(work, 'redirecting');
    cdn = await startCdn(dataDir, '127.0.0.2');
    registry = await startRegistry({ dataDir, blobRedirectBaseUrl: cdn.url });
    await pushImage(image, registry, 'library/app:v1');
    // The same with the CDN named by a host name: the check happens when the name is resolved.
    const byNameDir = join(work, 'redirecting-by-name');
    cdnByName = await startCdn(byNameDir, '127.0.0.1');
    byName = await startRegistry({ dataDir: byNameDir, blobRedirectBaseUrl: cdnByName.url.replace('127.0.0.1', 'localhost') });
    await pushImage(image, byName, 'library/app:v1');
    issuer = await startTokenIssuer({ users: { puller: PASSWORD } });
    tokenRegistry = await startRegistry({ auth: { kind: 'token', issuer } });
    await pushImage(image, tokenRegistry, 'library/app:v1', { destCreds: `puller:${PASSWORD}` });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([registry?.dispose(), byName?.dispose(), tokenRegistry?.dispose()]);
    await Promise.all([cdn?.stop(), cdnByName?.stop(), issuer?.stop()]);
  });

  const blobRequest = () => ({ method: 'GET' as const, path: `/v2/library/app/blobs/${image.layers[0]!.digest}`, repo: 'library/app', bulk: true });

  it('refuses a blob redirect to a loopback address, without connecting to it', async () => {
    const client = clientFor({ name: 'lab', url: registry.url }, { publicUpstream: true });
    try {
      await expect(client.request(blobRequest())).rejects.toSatisfy(refused);
      expect(cdn.requests()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('refuses a blob redirect to a host name that resolves to loopback', async () => {
    const client = clientFor({ name: 'lab', url: byName.url }, { publicUpstream: true });
    try {
      await expect(client.request(blobRequest())).rejects.toSatisfy((err: unknown) => err instanceof UpstreamUnavailableError && err.reason === 'refused');
      expect(cdnByName.requests()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('follows it with allowPrivateRedirects, and when the upstream lives on loopback itself', async () => {
    for (const client of [
      clientFor({ name: 'lab', url: registry.url, allowPrivateRedirects: true }, { publicUpstream: true }),
      clientFor({ name: 'lab', url: registry.url }, { publicUpstream: false }),
    ]) {
      try {
        const res = await client.request(blobRequest());
        expect(res.status).toBe(200);
        expect(`sha256:${createHash('sha256').update(await bodyOf(res)).digest('hex')}`).toBe(image.layers[0]!.digest);
      } finally {
        client.close();
      }
    }
    expect(cdn.requests().length).toBe(2);
  });

  it('refuses a token realm on a loopback address: the credentials never go there', async () => {
    const client = clientFor({ name: 'lab', url: tokenRegistry.url, credentials: { username: 'puller', password: PASSWORD } }, { publicUpstream: true });
    try {
      await expect(client.request({ method: 'GET', path: '/v2/library/app/manifests/v1', repo: 'library/app', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).rejects.toSatisfy(refused);
      expect(issuer.issued().filter((t) => t.scope.includes('pull') && !t.scope.includes('push'))).toEqual([]);
    } finally {
      client.close();
    }
  });
});

describe('a slow upstream', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;

  beforeAll(async () => {
    registry = await startRegistry();
    await pushImage(image, registry, 'library/app:v1');
    proxy = await startFaultProxy(registry.url);
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await registry?.dispose();
  });

  /** Established connections from this process to the fault proxy, as the kernel lists them. */
  const connectionsToProxy = () =>
    readFileSync('/proc/self/net/tcp', 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[3] === '01' && parseInt(fields[2]?.split(':')[1] ?? '', 16) === proxy.port).length;

  it('gets at most maxConnections connections, however many blobs are pulled at once', async () => {
    proxy.setFault({ dripBytesPerSec: 600_000 });
    const mirror = await startMirror({ upstreams: [{ name: 'lab', url: proxy.url, default: true, maxConnections: 2 }] });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, connectionsToProxy())), 5);
    try {
      const blobs = await Promise.all(image.layers.map(async (layer) => Buffer.from(await (await fetch(`${mirror.url}/v2/library/app/blobs/${layer.digest}`)).arrayBuffer())));
      blobs.forEach((blob, i) => expect(`sha256:${createHash('sha256').update(blob).digest('hex')}`).toBe(image.layers[i]!.digest));
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(2);
    } finally {
      clearInterval(sampler);
      proxy.setFault('none');
      await mirror.dispose();
    }
  }, 60_000);

  it('ends a blob download that drips slower than the minimum rate, and caches nothing', async () => {
    proxy.setFault({ dripBytesPerSec: 2_000 });
    const mirror = await startMirror({ upstreams: [{ name: 'lab', url: proxy.url, default: true }], upstreamTimeouts: { idle: '1s', minRate: '64KiB' } });
    const layer = image.layers[1]!;
    try {
      const res = await fetch(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
      await expect(res.arrayBuffer()).rejects.toThrow();
      await mirror.runtime.idle();
      expect(await mirror.runtime.deps.blobs.stat(layer.digest)).toBeUndefined();
      const failed = mirror.logs().find((line) => line.msg === 'blob download failed; nothing cached');
      expect(JSON.stringify(failed?.err)).toMatch(/minimum rate/);
    } finally {
      proxy.setFault('none');
      await sleep(50);
      await mirror.dispose();
    }
  }, 30_000);
});
