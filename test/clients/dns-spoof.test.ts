// DNS-spoof mode as a node sees it: registry-1.docker.io and ghcr.io resolve to the mirror (curl
// --resolve stands in for the node's /etc/hosts), which answers on :443 with a certificate from
// `ocimirror tls init` that the client trusts through the generated CA alone, and routes by Host.
// The mirror itself is never fooled: it dials only its upstreams (an `address` pins one past DNS),
// refuses a request that it sent itself (508), and refuses to start with an upstream that is itself.
import { randomInt } from 'node:crypto';
import { mkdir, readFile, stat, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../support/binaries.ts';
import { ocimirrorOk, runOcimirror } from '../support/cli.ts';
import { buildImage, pushImage, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startProcess } from '../support/process.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { startTcpForwarder, type TcpForwarder } from '../support/tcp-forwarder.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { buildAndPush, type SeededContent } from '../support/upstream-content.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** A loopback address of this test's own (127.0.0.0/8 is all loopback), so it can have port 443 to itself. */
const MIRROR_IP = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

let work: string;
let dataDir: string;
let registry: RunningRegistry;
let content: SeededContent;
let app: BuiltImage;
/** Pulled only through the pinned upstream: no other upstream's pull (or its layer prefetch) cached its blobs. */
let pinnedApp: BuiltImage;
let mirror: RunningMirror;
/** Forwards to the mirror's plain port: an upstream "elsewhere" that is really the mirror. */
let loopback: TcpForwarder;
/** Forwards to the registry from another loopback address than the one `localhost` resolves to. */
let pinned: TcpForwarder;
/** Nothing listens here: what `localhost` in the pinned upstream's URL would reach. */
let unusedPort: number;
let tlsInitOutput: string;

interface CurlResult {
  exitCode: number | null;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** curl as the node would run it: name -> MIRROR_IP:443, trusting only the mirror's CA (unless told otherwise). */
async function curl(url: string, options: { headers?: Record<string, string>; cacert?: string | null } = {}): Promise<CurlResult> {
  const binary = requireBinary('curl', 'curl');
  const { hostname } = new URL(url);
  const bodyFile = join(work, `curl-body-${randomInt(1e9)}`);
  const args = ['-q', '-sS', '--noproxy', '*', '--max-time', '30', '--resolve', `${hostname}:443:${MIRROR_IP}`, '-D', '-', '-o', bodyFile];
  const cacert = options.cacert === undefined ? join(dataDir, 'tls', 'ca.crt') : options.cacert;
  if (cacert) args.push('--cacert', cacert);
  for (const [name, value] of Object.entries({ accept: OCI_MANIFEST, ...options.headers })) args.push('-H', `${name}: ${value}`);
  // CURL_CA_BUNDLE and friends are not passed on: only the CA given here is trusted.
  const child = startProcess({ command: binary, args: [...args, url], env: { PATH: process.env.PATH, HOME: work } });
  const exit = await child.exited;
  const headerText = child.stdout();
  const headers: Record<string, string> = {};
  for (const line of headerText.split('\r\n').slice(1)) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return {
    exitCode: exit.code,
    status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headerText)?.[1] ?? 0),
    headers,
    body: await readFile(bodyFile, 'utf8').catch(() => ''),
    stderr: child.stderr(),
  };
}

beforeAll(async () => {
  work = await makeTempDir('dns-spoof-test');
  dataDir = join(work, 'data');
  registry = await startRegistry();
  content = await buildAndPush(registry, work);
  app = await buildImage(join(work, 'app'), { tag: 'v1', layers: [{ files: { app: 'ghcr\n' } }] });
  await pushImage(app, registry, 'org/app:v1');
  pinnedApp = await buildImage(join(work, 'pinned-app'), { tag: 'v1', layers: [{ files: { app: 'pinned\n' } }] });
  await pushImage(pinnedApp, registry, 'org/pinned:v1');
  loopback = await startTcpForwarder();
  pinned = await startTcpForwarder({ host: '127.0.0.2', target: { host: '127.0.0.1', port: registry.port } });
  unusedPort = await freePort();

  const upstreams = [
    { name: 'docker.io', url: registry.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true },
    { name: 'ghcr.io', url: registry.url, aliases: ['ghcr.io'] },
    // Its URL names a host and port where nothing listens; only the pinned address reaches the registry.
    // No layer prefetch: the blob GET the test looks for is the client's own.
    { name: 'pinned', url: `http://localhost:${unusedPort}`, aliases: ['pinned.example'], address: `127.0.0.2:${pinned.port}`, prefetch: false },
    { name: 'unpinned', url: `http://localhost:${unusedPort}`, aliases: ['unpinned.example'] },
    { name: 'loop', url: `http://127.0.0.1:${loopback.port}`, aliases: ['loop.example'] },
  ];
  const tls = { listen: [`${MIRROR_IP}:443`] };
  const configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify({ dataDir, upstreams, tls }));
  tlsInitOutput = (await ocimirrorOk(['tls', 'init', '--config', configFile, '--name', 'mirror.localhost', '--ip', MIRROR_IP])).stdout;
  mirror = await startMirror({ dataDir, upstreams, tls });
  loopback.setTarget({ host: '127.0.0.1', port: Number(new URL(mirror.url).port) });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await Promise.all([loopback?.close(), pinned?.close(), registry?.dispose()]);
  if (work) await removeTempDir(work);
});

function requestLines(): Record<string, unknown>[] {
  return mirror.logs().filter((l) => l.msg === 'request');
}

describe('ocimirror tls init', () => {
  it('writes the CA and server pair with private keys mode 0600 and says how to trust the CA', async () => {
    for (const name of ['ca.key', 'server.key']) expect((await stat(join(dataDir, 'tls', name))).mode & 0o777).toBe(0o600);
    for (const name of ['ca.crt', 'server.crt']) expect((await stat(join(dataDir, 'tls', name))).isFile()).toBe(true);
    expect(tlsInitOutput).toContain('update-ca-certificates');
    expect(tlsInitOutput).toContain('/etc/containers/certs.d/');
    expect(tlsInitOutput).toMatch(/names +mirror\.localhost, 127\.\d+\.\d+\.\d+, docker\.io, registry-1\.docker\.io, ghcr\.io, /);
  });
});

describe('a node whose /etc/hosts points the registries at the mirror', () => {
  it('pulls registry-1.docker.io/library/alpine over TLS, trusting only the generated CA', async () => {
    const res = await curl('https://registry-1.docker.io/v2/library/alpine/manifests/3.8');
    expect(res.stderr).toBe('');
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(content.alpine.manifestDigest);
    expect(res.headers['oci-namespace']).toBe('docker.io');
    const blob = await curl(`https://registry-1.docker.io/v2/library/alpine/blobs/${content.alpine.configDigest}`);
    expect(blob.status).toBe(200);
    expect(JSON.parse(blob.body)).toMatchObject({ architecture: 'amd64', os: 'linux' });
  });

  it('routes by the Host header: ghcr.io goes to the ghcr.io upstream with no path prefix', async () => {
    const res = await curl('https://ghcr.io/v2/org/app/manifests/v1');
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(app.manifestDigest);
    expect(res.headers['oci-namespace']).toBe('ghcr.io');
    expect(requestLines().at(-1)).toMatchObject({ path: '/v2/org/app/manifests/v1', upstream: 'ghcr.io', repo: 'org/app' });
  });

  it('refuses the connection when the client does not trust the CA', async () => {
    const res = await curl('https://registry-1.docker.io/v2/', { cacert: null });
    expect(res.exitCode).toBe(60); // curl: peer certificate cannot be authenticated
  });

  it('is trusted by Go clients too (skopeo with the CA in a certs dir, the IP in the certificate)', async () => {
    const certDir = join(work, 'certs.d');
    await mkdir(certDir, { recursive: true });
    await copyFile(join(dataDir, 'tls', 'ca.crt'), join(certDir, 'ca.crt'));
    const info = await skopeoInspect(`docker://${MIRROR_IP}/library/alpine:3.8`, { tlsVerify: true, certDir });
    expect(info.Digest).toBe(content.alpine.manifestDigest);
  }, 60_000);

  it('sends a request for the mirror’s own name by path prefix or to the default, dialling only upstreams', async () => {
    await registry.settle();
    registry.clearRequests();
    const prefixed = await curl('https://mirror.localhost/v2/ghcr.io/org/app/manifests/v1');
    expect(prefixed.status).toBe(200);
    expect(prefixed.headers['oci-namespace']).toBe('ghcr.io');
    const plain = await curl('https://mirror.localhost/v2/library/alpine/manifests/3.8');
    expect(plain.status).toBe(200);
    expect(plain.headers['oci-namespace']).toBe('docker.io');
    expect(requestLines().slice(-2).map((l) => l.upstream)).toEqual(['ghcr.io', 'docker.io']);
  });
});

describe('the mirror is not fooled by names that lead back to it', () => {
  it('connects to an upstream’s address and port, keeping the URL’s host and port in the Host header', async () => {
    const res = await curl('https://mirror.localhost/v2/pinned.example/org/pinned/manifests/v1');
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(pinnedApp.manifestDigest);
    expect(pinned.heads().some((h) => h.toLowerCase().includes(`\r\nhost: localhost:${unusedPort}\r\n`))).toBe(true);
    // Blob GETs use connections of their own (the upstream client's bulk pool): pinned the same way.
    const layer = pinnedApp.layers[0]!.digest;
    const blob = await curl(`https://mirror.localhost/v2/pinned.example/org/pinned/blobs/${layer}`);
    expect(blob.status).toBe(200);
    expect(blob.headers['x-ocimirror-cache']).toBe('miss');
    expect(pinned.heads().some((h) => h.startsWith(`GET /v2/org/pinned/blobs/${layer} `) && h.toLowerCase().includes(`\r\nhost: localhost:${unusedPort}\r\n`))).toBe(true);
    // The same URL without the address goes where it says: nothing listens there.
    const unpinned = await curl('https://mirror.localhost/v2/unpinned.example/org/app/manifests/v1');
    expect(unpinned.status).toBe(502);
  });

  it('answers 508 to a request carrying its own Via marker', async () => {
    const res = await curl('https://registry-1.docker.io/v2/library/alpine/manifests/3.8', { headers: { via: `1.1 ocimirror-${mirror.runtime.deps.instanceId}` } });
    expect(res.status).toBe(508);
    expect(JSON.parse(res.body).errors[0].code).toBe('UNAVAILABLE');
    const other = await curl('https://registry-1.docker.io/v2/library/alpine/manifests/3.8', { headers: { via: '1.1 ocimirror-0123456789ab' } });
    expect(other.status).toBe(200);
  });

  it('stops an upstream that leads back to the mirror after one hop', async () => {
    const before = requestLines().length;
    const res = await curl('https://mirror.localhost/v2/loop.example/org/app/manifests/v1');
    expect(res.status).toBe(508);
    expect(res.body).toContain('a proxy loop');
    const lines = requestLines().slice(before);
    // The client's request and the one the mirror sent itself, refused: no second round.
    expect(lines.map((l) => l.status).sort()).toEqual([508, 508]);
    expect(lines.find((l) => l.status === 508)).toMatchObject({ route: 'loop', userAgent: 'ocimirror' });
  });

  it('refuses to start with an upstream that is one of its own listen addresses', async () => {
    const configFile = join(work, 'self.yaml');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:5999', dataDir: join(work, 'self-data'), upstreams: [{ name: 'me', url: 'http://localhost:5999' }] }));
    const result = await runOcimirror(['serve', '--config', configFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('is this mirror\'s own listen address 127.0.0.1:5999');
  });
});
