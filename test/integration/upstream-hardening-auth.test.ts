// What an upstream's challenges can make the mirror do (issue 14, items 2, 3, 4 and 6): send its
// credentials to a host the upstream did not name, fetch tokens from itself in a loop, read an endless
// token answer, or hold sockets while a token server is slow. The upstreams are real docker-registry
// processes with real token issuers; the CDN that answers 401 and the realms that misbehave (a huge
// answer, a held one) are scripted, because no real registry or token server can be made to.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode, rawRequest } from '../support/http.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.ts';

const PASSWORD = 'hardening-Secret-77';
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let image: BuiltImage;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  work = await makeTempDir('upstream-hardening-auth');
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 50_000, seed: 'hardening-auth' }] });
}, 120_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  if (work) await removeTempDir(work);
});

async function issuerWith(users: Record<string, string>): Promise<TokenIssuer> {
  const issuer = await startTokenIssuer({ users });
  cleanups.push(() => issuer.stop());
  return issuer;
}

async function registryWith(options: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const registry = await startRegistry(options);
  cleanups.push(() => registry.dispose());
  return registry;
}

async function mirrorWith(input: Parameters<typeof startMirror>[0]): Promise<RunningMirror> {
  const mirror = await startMirror(input);
  cleanups.push(() => mirror.dispose());
  return mirror;
}

/** A scripted loopback HTTP server; its open connections are cut at clean-up. */
async function scriptedServer(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1'): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}

describe('credentials', () => {
  it('never go to a token realm that a blob redirect target (a CDN) names', async () => {
    const issuer = await issuerWith({ puller: PASSWORD });
    // Scripted: a CDN that wants a token of its own, from a realm the upstream never named.
    const cdnRequests: string[] = [];
    const cdn = await scriptedServer((req, res) => {
      cdnRequests.push(req.url ?? '');
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${issuer.realm}",service="cdn.example"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }, '127.0.0.2');
    const registry = await registryWith({ auth: { kind: 'htpasswd', username: 'puller', password: PASSWORD }, blobRedirectBaseUrl: cdn });
    await pushImage(image, registry, 'private/app:v1', { destCreds: `puller:${PASSWORD}` });
    const mirror = await mirrorWith({ upstreams: [{ name: 'lab', url: registry.url, default: true, credentials: { username: 'puller', password: PASSWORD } }], upstreamRetries: 0 });

    // A manifest first: the mirror learns the upstream's Basic challenge and sends Basic from then on.
    expect((await rawRequest(mirror.url, { path: '/v2/private/app/manifests/v1', headers: { accept: ACCEPT } })).status).toBe(200);
    const res = await rawRequest(mirror.url, { path: `/v2/private/app/blobs/${image.layers[0]!.digest}` });
    expect(cdnRequests.length).toBeGreaterThan(0);
    expect(issuer.issued()).toEqual([]);
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe('DENIED');
  });
});

describe('a token realm that leads back to the mirror', () => {
  it('ends at the first hop: the token request carries the Via, and nothing outlives the answer', async () => {
    const issuer = await issuerWith({});
    const port = await freePort();
    // The upstream's realm is a tags/list URL of the mirror itself: asking it for a token is a new
    // upstream request (tag lists are not single-flighted), which is challenged in turn.
    const realm = `http://127.0.0.1:${port}/v2/loop/app/tags/list`;
    const registry = await registryWith({ auth: { kind: 'token', issuer: { ...issuer, realm } } });
    const mirror = await mirrorWith({ listen: `127.0.0.1:${port}`, upstreams: [{ name: 'lab', url: registry.url, default: true }], upstreamTimeouts: { response: '3s' } });

    const res = await rawRequest(mirror.url, { path: '/v2/loop/app/tags/list' });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(errorCode(res)).toBe('UNAVAILABLE');
    await registry.settle();
    const afterAnswer = registry.requests().length;
    // One tags/list request, challenged once; the token request came back with the mirror's Via and
    // was answered 508, which is not retried.
    expect(afterAnswer).toBe(1);
    // Longer than the response timeout: a request still waiting somewhere would have given up and retried.
    await sleep(3_500);
    await registry.settle();
    expect(registry.requests().length).toBe(afterAnswer);
    // The token request that came back (508), and the client's own answer: a loop, said as such (508, which
    // a mirror in front does not retry), not a bare 502.
    expect(mirror.logs().filter((line) => line.status === 508)).toHaveLength(2);
    expect(res.status).toBe(508);
  });
});

describe('a token answer', () => {
  it('is read up to a size limit, not to its end', async () => {
    const issuer = await issuerWith({});
    let finished = false;
    let closedEarly = false;
    // Scripted: a realm whose answer never stops growing (64 MiB of padding inside valid JSON).
    const realm = await scriptedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('finish', () => (finished = true));
      res.on('close', () => (closedEarly = !finished));
      const piece = Buffer.alloc(1024 * 1024, 'a');
      let left = 64;
      res.write('{"token":"x","padding":"');
      const more = () => {
        while (left > 0) {
          left--;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end('"}');
      };
      more();
    });
    const registry = await registryWith({ auth: { kind: 'token', issuer: { ...issuer, realm: `${realm}/token` } } });
    const mirror = await mirrorWith({ upstreams: [{ name: 'lab', url: registry.url, default: true }], upstreamRetries: 0 });

    const res = await rawRequest(mirror.url, { path: '/v2/private/app/manifests/v1', headers: { accept: ACCEPT } });
    expect(res.status).toBe(502);
    expect(errorCode(res)).toBe('UNAVAILABLE');
    for (let i = 0; i < 100 && !finished && !closedEarly; i++) await sleep(20);
    expect(closedEarly).toBe(true);
    expect(finished).toBe(false);
  });
});

describe('a slow token realm', () => {
  it('holds no upstream socket while tokens are fetched: an unrelated pull completes while every slow fetch still waits', async () => {
    const issuer = await issuerWith({ puller: PASSWORD });
    // Scripted: a gate in front of the real issuer that holds token requests for slow/* until released.
    const held: { req: IncomingMessage; res: ServerResponse }[] = [];
    const events: string[] = [];
    const passOn = (req: IncomingMessage, res: ServerResponse) => {
      const forward = http.get(`${issuer.realm}${req.url!.slice(req.url!.indexOf('?'))}`, { headers: { authorization: req.headers.authorization ?? '' } }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
    };
    let holding = true;
    const gate = await scriptedServer((req, res) => {
      if (!holding || !decodeURIComponent(req.url ?? '').includes('repository:slow/')) return passOn(req, res);
      held.push({ req, res });
      req.socket.once('close', () => !res.writableEnded && events.push('slow fetch abandoned'));
    });
    const registry = await registryWith({ auth: { kind: 'token', issuer: { ...issuer, realm: `${gate}/token` } } });
    await pushImage(image, registry, 'fast/app:v1', { destCreds: `puller:${PASSWORD}` });
    const CONNECTIONS = 4;
    const mirror = await mirrorWith({
      upstreams: [{ name: 'lab', url: registry.url, default: true, credentials: { username: 'puller', password: PASSWORD }, maxConnections: CONNECTIONS }],
      upstreamTimeouts: { response: '20s' },
      upstreamRetries: 0,
    });
    // The token for fast/app is fetched now and cached: the unrelated pull below needs only a socket.
    expect((await rawRequest(mirror.url, { path: '/v2/fast/app/tags/list' })).status).toBe(200);
    const manifest = () => rawRequest(mirror.url, { path: '/v2/fast/app/manifests/v1', headers: { accept: ACCEPT } });

    const slow = Array.from({ length: CONNECTIONS + 2 }, (_, i) => rawRequest(mirror.url, { path: `/v2/slow/app${i}/manifests/v1`, headers: { accept: ACCEPT } }));
    while (held.length < CONNECTIONS) await sleep(20);
    const unrelated = await manifest().then((res) => {
      events.push('unrelated pull answered');
      return res;
    });
    expect(unrelated.status).toBe(200);
    expect(unrelated.headers['docker-content-digest']).toBe(image.manifestDigest);
    expect(events[0]).toBe('unrelated pull answered');
    holding = false;
    for (const { req, res } of held) passOn(req, res);
    const answers = await Promise.all(slow);
    expect(answers.every((a) => a.status === 404)).toBe(true);
    expect(events).toEqual(['unrelated pull answered']);
  }, 60_000);
});
