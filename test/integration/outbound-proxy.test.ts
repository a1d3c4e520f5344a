// The outbound proxy (issue 13, item 3): HTTP_PROXY / HTTPS_PROXY / NO_PROXY and a per-upstream `proxy:`,
// through a real forward proxy (tinyproxy on loopback, allowed to connect to 127.0.0.1 only). Upstreams
// are real docker-registry processes: one plain HTTP, one serving TLS with a CA this test generates,
// reached by CONNECT. The proxy's own log says what it carried.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createCertificateAuthority, issueServerCertificate } from '../../src/tls/certificates.ts';
import { startForwardProxy, type ForwardProxy } from '../support/forward-proxy.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
const PROXY_USER = 'mirror';
const PROXY_PASSWORD = 'proxy-Secret-7';

let work: string;
let image: BuiltImage;
let plain: RunningRegistry;
let tls: RunningRegistry;
let caFile: string;
let proxy: ForwardProxy;
let authProxy: ForwardProxy;

beforeAll(async () => {
  work = await makeTempDir('outbound-proxy');
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 300_000, seed: 'proxy-0' }, { randomBytes: 200_000, seed: 'proxy-1' }] });
  const dataDir = join(work, 'registry');
  plain = await startRegistry({ dataDir });
  await pushImage(image, plain, 'library/app:v1');
  // The same storage served over TLS by a second registry, with a certificate from the test's own CA.
  const ca = createCertificateAuthority({ commonName: 'outbound-proxy test CA', validDays: 1 });
  caFile = join(work, 'ca.crt');
  await writeFile(caFile, ca.cert);
  tls = await startRegistry({ dataDir, tls: issueServerCertificate(ca, { names: ['127.0.0.1'], validDays: 1 }) });
  proxy = await startForwardProxy({ connectPorts: [tls.port] });
  authProxy = await startForwardProxy({ connectPorts: [tls.port], credentials: { username: PROXY_USER, password: PROXY_PASSWORD } });
}, 120_000);

afterAll(async () => {
  await Promise.all([proxy?.stop(), authProxy?.stop()]);
  await Promise.all([plain?.dispose(), tls?.dispose()]);
  if (work) await removeTempDir(work);
});

type Upstream = NonNullable<ConfigInput['upstreams']>[number];

/** Pulls the image (manifest, config, layers) through a fresh mirror; returns its log text. */
async function pullThrough(upstream: Omit<Upstream, 'name'>, env: NodeJS.ProcessEnv, extra: Partial<ConfigInput> = {}): Promise<{ statuses: number[]; log: string }> {
  const mirror = await startMirror({ upstreams: [{ name: 'lab', default: true, ...upstream }], env, upstreamRetries: 0, ...extra });
  try {
    const manifest = await fetch(`${mirror.url}/v2/library/app/manifests/v1`, { headers: { accept: ACCEPT } });
    await manifest.arrayBuffer();
    const statuses = [manifest.status];
    if (manifest.status === 200) {
      for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
        const blob = await fetch(`${mirror.url}/v2/library/app/blobs/${digest}`);
        const bytes = Buffer.from(await blob.arrayBuffer());
        statuses.push(blob.status);
        if (blob.status === 200) expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
      }
    }
    return { statuses, log: mirror.logText() };
  } finally {
    await mirror.dispose();
  }
}

/** The proxy's request lines that appeared while `run` ran. */
async function carried(through: ForwardProxy, run: () => Promise<unknown>): Promise<string[]> {
  const before = (await through.requests()).length;
  await run();
  return (await through.requests()).slice(before);
}

const ALL_OK = [200, 200, 200, 200];

describe('HTTP_PROXY, HTTPS_PROXY and NO_PROXY', () => {
  it('send a plain-HTTP upstream\'s requests through the proxy (lower-case form too)', async () => {
    for (const name of ['HTTP_PROXY', 'http_proxy']) {
      let statuses: number[] = [];
      const lines = await carried(proxy, async () => ({ statuses } = await pullThrough({ url: plain.url }, { [name]: proxy.url })));
      expect(statuses).toEqual(ALL_OK);
      const base = `http://${plain.host}/v2/library/app`;
      expect(lines).toContain(`GET ${base}/manifests/v1 HTTP/1.1`);
      for (const layer of image.layers) expect(lines).toContain(`GET ${base}/blobs/${layer.digest} HTTP/1.1`);
    }
  }, 60_000);

  it('tunnel a TLS upstream through CONNECT, its certificate checked against the upstream\'s ca', async () => {
    let statuses: number[] = [];
    const lines = await carried(proxy, async () => ({ statuses } = await pullThrough({ url: tls.url, ca: caFile }, { HTTPS_PROXY: proxy.url })));
    expect(statuses).toEqual(ALL_OK);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((line) => line === `CONNECT ${tls.host} HTTP/1.1`)).toBe(true);
    // The tunnel does not skip verification: without the CA the upstream is not trusted.
    const untrusted = await pullThrough({ url: tls.url }, { HTTPS_PROXY: proxy.url });
    expect(untrusted.statuses[0]).toBeGreaterThanOrEqual(500);
    expect(untrusted.log).toMatch(/certificate/i);
  }, 60_000);

  it('leave hosts NO_PROXY names to direct connections', async () => {
    plain.clearRequests();
    let statuses: number[] = [];
    const lines = await carried(proxy, async () => ({ statuses } = await pullThrough({ url: plain.url }, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: `localhost,${plain.host}` })));
    expect(statuses).toEqual(ALL_OK);
    expect(lines).toEqual([]);
    await plain.settle();
    expect(plain.requests().filter((r) => r.path.startsWith('/v2/library/app/')).length).toBe(4);
  }, 60_000);
});

describe('a per-upstream proxy', () => {
  it('wins over the environment, and sends its credentials (from the environment), which are never logged', async () => {
    let result = { statuses: [] as number[], log: '' };
    const upstream = { url: tls.url, ca: caFile, proxy: { url: authProxy.url, credentials: { username: PROXY_USER, passwordEnv: 'PROXY_PASSWORD' } } };
    const env = { PROXY_PASSWORD, HTTPS_PROXY: proxy.url };
    const unused = await carried(proxy, async () => {
      const lines = await carried(authProxy, async () => (result = await pullThrough(upstream, env, { log: { level: 'trace' } })));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((line) => line === `CONNECT ${tls.host} HTTP/1.1`)).toBe(true);
    });
    expect(result.statuses).toEqual(ALL_OK);
    expect(unused).toEqual([]);
    expect(result.log).not.toContain(PROXY_PASSWORD);
    expect(result.log).not.toContain(Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64'));
  }, 60_000);

  it('answers 502 when the proxy wants credentials it did not get, forwarding or tunnelling', async () => {
    // Without credentials tinyproxy answers 407; with wrong ones it answers 401 (WWW-Authenticate), which
    // on a forwarded request no client can tell from the registry's own: the CONNECT case covers those.
    const forwarded = await pullThrough({ url: plain.url, proxy: authProxy.url }, {});
    expect(forwarded.statuses).toEqual([502]);
    expect(forwarded.log).toMatch(/Proxy Authentication Required \(407\)/);
    const wrong = { url: authProxy.url, credentials: { username: PROXY_USER, password: 'wrong' } };
    const tunnelled = await pullThrough({ url: tls.url, ca: caFile, proxy: wrong }, {});
    expect(tunnelled.statuses).toEqual([502]);
  }, 60_000);

  it('proxy: false goes direct whatever the environment says', async () => {
    let statuses: number[] = [];
    const lines = await carried(proxy, async () => ({ statuses } = await pullThrough({ url: plain.url, proxy: false }, { HTTP_PROXY: proxy.url })));
    expect(statuses).toEqual(ALL_OK);
    expect(lines).toEqual([]);
  }, 60_000);
});
