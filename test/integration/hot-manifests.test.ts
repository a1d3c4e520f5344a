// The hot path for cached manifests (routes/hot-manifests.ts): a repeated request for a cached tag or
// digest is answered in front of hono, and what the client, the operator's log and Prometheus see is what
// the full path gives: the same status, headers and body, the same access line fields in the same order,
// the same counters. It never serves a tag past its TTL, nor a tag or digest `ocimirror rm` dropped; with
// client authentication on, it answers only callers the gate lets pull, and leaves every refusal to the gate.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { htpasswdLine } from '../support/htpasswd.ts';
import { buildImage, pushImage, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const TAG_TTL_MS = 1_500;

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let v1: BuiltImage;
let v2: BuiltImage;
let v3: BuiltImage;
let replayed = 0;

beforeAll(async () => {
  work = await makeTempDir('hot-manifests-test');
  registry = await startRegistry();
  v1 = await buildImage(join(work, 'v1'), { tag: '1', layers: [{ files: { a: 'one\n' } }] });
  v2 = await buildImage(join(work, 'v2'), { tag: '1', layers: [{ files: { a: 'two\n' } }] });
  v3 = await buildImage(join(work, 'v3'), { tag: '1', layers: [{ files: { a: 'three\n' } }] });
  await pushImage(v1, registry, 'library/hot:1');
  await pushImage(v1, registry, 'library/ttl:1');
  await pushImage(v1, registry, 'library/gone:1');
  await pushImage(v3, registry, 'library/by-digest:1');
  mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, tagTtl: `${TAG_TTL_MS}ms`, prefetch: false }] });
  countReplays(mirror, () => replayed++);
}, 300_000);

/** Calls `replayed` for each request the hot path answered (the server calls handle() on this object per request). */
function countReplays(target: RunningMirror, replayed: () => void): void {
  const hot = target.runtime.registry.hot!;
  const handle = hot.handle.bind(hot);
  hot.handle = async (req, res) => {
    const answered = await handle(req, res);
    if (answered) replayed();
    return answered;
  };
}

afterAll(async () => {
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const get = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
  fetch(`${mirror.url}${path}`, { ...init, headers: { accept: OCI_MANIFEST, 'user-agent': 'hot-test', ...init.headers } });
const headersOf = (res: Response) => Object.fromEntries([...res.headers].filter(([name]) => name !== 'date'));
const requestLines = () => mirror.logs().filter((l) => l.msg === 'request');
/** An access line without what differs between any two requests. */
const withoutVolatile = (line: Record<string, unknown>) => ({ ...line, time: 0, reqId: 0, duration_ms: 0 });

async function metric(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${mirror.url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** Waits for the access line of the request just answered (written when its response closed). */
async function lastLine(count: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200 && requestLines().length < count; i++) await sleep(10);
  return requestLines().at(-1)!;
}

describe('a cached tag asked for again', () => {
  it('gets the full path’s status, headers, body, access line and counters', async () => {
    const first = await get('/v2/library/hot/manifests/1?ns=docker.io');
    expect(first.headers.get('x-ocimirror-cache')).toBe('miss');
    await first.arrayBuffer();
    // A Via header takes the full path: its cache hit is the reference answer.
    const full = await get('/v2/library/hot/manifests/1?ns=docker.io', { headers: { via: '1.1 some-proxy' } });
    const fullBody = Buffer.from(await full.arrayBuffer());
    const fullLine = await lastLine(2);
    const before = replayed;
    const requestsBefore = await metric(/^ocimirror_http_requests_total\{route="manifest",method="GET",code="200"\} (\d+)$/m);
    const hitsBefore = await metric(/^ocimirror_cache_lookups_total\{kind="tag",result="hit"\} (\d+)$/m);
    const bytesBefore = await metric(/^ocimirror_served_bytes_total\{source="cache"\} (\d+)$/m);

    const fast = await get('/v2/library/hot/manifests/1?ns=docker.io');
    const fastBody = Buffer.from(await fast.arrayBuffer());
    const fastLine = await lastLine(3);
    expect(replayed).toBe(before + 1);
    expect(fast.status).toBe(200);
    expect(headersOf(fast)).toEqual(headersOf(full));
    expect(fast.headers.get('docker-content-digest')).toBe(v1.manifestDigest);
    expect(fast.headers.get('etag')).toBe(`"${v1.manifestDigest}"`);
    expect(fastBody.equals(fullBody)).toBe(true);
    expect(Object.keys(fastLine)).toEqual(Object.keys(fullLine));
    expect(withoutVolatile(fastLine)).toEqual({ ...withoutVolatile(fullLine) });
    expect(fastLine).toMatchObject({ method: 'GET', path: '/v2/library/hot/manifests/1', ns: 'docker.io', route: 'manifest', status: 200, cache: 'hit', size_bytes: fastBody.byteLength, userAgent: 'hot-test' });
    expect(fastLine.reqId).toMatch(/^[0-9a-f]{12}$/);
    expect(fastLine.reqId).not.toBe(fullLine.reqId);
    expect(await metric(/^ocimirror_http_requests_total\{route="manifest",method="GET",code="200"\} (\d+)$/m)).toBe(requestsBefore + 1);
    expect(await metric(/^ocimirror_cache_lookups_total\{kind="tag",result="hit"\} (\d+)$/m)).toBe(hitsBefore + 1);
    expect(await metric(/^ocimirror_served_bytes_total\{source="cache"\} (\d+)$/m)).toBe(bytesBefore + fastBody.byteLength);

    // HEAD: the same headers, no body, size 0 in the log.
    const head = await get('/v2/library/hot/manifests/1?ns=docker.io', { method: 'HEAD' });
    expect(replayed).toBe(before + 2);
    const fullHead = await get('/v2/library/hot/manifests/1?ns=docker.io', { method: 'HEAD', headers: { via: '1.1 some-proxy' } });
    expect(headersOf(head)).toEqual(headersOf(fullHead));
    expect(requestLines().find((l) => l.method === 'HEAD')).toMatchObject({ size_bytes: 0, cache: 'hit' });
  });

  it('is revalidated upstream once the tag TTL passed, as the full path does', async () => {
    expect((await get('/v2/library/ttl/manifests/1')).headers.get('docker-content-digest')).toBe(v1.manifestDigest);
    const before = replayed;
    expect((await get('/v2/library/ttl/manifests/1')).headers.get('docker-content-digest')).toBe(v1.manifestDigest);
    expect(replayed).toBe(before + 1);
    await pushImage(v2, registry, 'library/ttl:1');
    await sleep(TAG_TTL_MS + 200);
    const moved = await get('/v2/library/ttl/manifests/1');
    expect(moved.headers.get('docker-content-digest')).toBe(v2.manifestDigest);
    expect(moved.headers.get('x-ocimirror-cache')).toBe('miss');
    expect(replayed).toBe(before + 1);
  });

  it('is not answered from memory after `ocimirror rm` dropped the tag', async () => {
    await get('/v2/library/gone/manifests/1').then((r) => r.arrayBuffer());
    const removed = await fetch(`${mirror.adminUrl}/_ocimirror/images/docker.io/library/gone:1`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    const before = replayed;
    const again = await get('/v2/library/gone/manifests/1');
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ocimirror-cache')).toBe('miss');
    expect(replayed).toBe(before);
  });
});

describe('a cached digest asked for again', () => {
  it('gets the full path’s status, headers, body, access line and counters', async () => {
    const path = `/v2/library/by-digest/manifests/${v3.manifestDigest}`;
    const first = await get(path);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const full = await get(path, { headers: { via: '1.1 some-proxy' } });
    expect(full.headers.get('x-ocimirror-cache')).toBe('hit');
    const fullBody = Buffer.from(await full.arrayBuffer());
    const lines = requestLines().length;
    const fullLine = await lastLine(lines);
    const before = replayed;
    const hitsBefore = await metric(/^ocimirror_cache_lookups_total\{kind="manifest",result="hit"\} (\d+)$/m);
    const tagHitsBefore = await metric(/^ocimirror_cache_lookups_total\{kind="tag",result="hit"\} (\d+)$/m);

    const fast = await get(path);
    const fastBody = Buffer.from(await fast.arrayBuffer());
    const fastLine = await lastLine(lines + 1);
    expect(replayed).toBe(before + 1);
    expect(fast.status).toBe(200);
    expect(headersOf(fast)).toEqual(headersOf(full));
    expect(fast.headers.get('docker-content-digest')).toBe(v3.manifestDigest);
    expect(fastBody.equals(fullBody)).toBe(true);
    expect(Object.keys(fastLine)).toEqual(Object.keys(fullLine));
    expect(withoutVolatile(fastLine)).toEqual(withoutVolatile(fullLine));
    expect(await metric(/^ocimirror_cache_lookups_total\{kind="manifest",result="hit"\} (\d+)$/m)).toBe(hitsBefore + 1);
    expect(await metric(/^ocimirror_cache_lookups_total\{kind="tag",result="hit"\} (\d+)$/m)).toBe(tagHitsBefore);
  });

  it('is fetched upstream again after `ocimirror rm` freed it', async () => {
    const path = `/v2/library/by-digest/manifests/${v3.manifestDigest}`;
    await get('/v2/library/by-digest/manifests/1').then((r) => r.arrayBuffer());
    await get(path).then((r) => r.arrayBuffer());
    const removed = await fetch(`${mirror.adminUrl}/_ocimirror/images/docker.io/library/by-digest:1`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    const before = replayed;
    const again = await get(path);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ocimirror-cache')).toBe('miss');
    expect(replayed).toBe(before);
  });
});

describe('with client authentication on', () => {
  let authed: RunningMirror;
  let authedReplays = 0;

  beforeAll(async () => {
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, `${await htpasswdLine('alice', 'alice-password')}\n`);
    await pushImage(v1, registry, 'library/private:1');
    authed = await startMirror({
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, prefetch: false }],
      auth: { htpasswd, anonymous: [], rules: [{ repos: ['library/private'], users: ['alice'], actions: ['pull'] }] },
    });
    countReplays(authed, () => authedReplays++);
  }, 60_000);

  afterAll(async () => {
    await authed?.dispose();
  });

  const tokenFor = async (scope: string) => {
    const res = await fetch(`${authed.url}/auth/token?service=ocimirror&scope=${scope}`, { headers: { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` } });
    return ((await res.json()) as { token: string }).token;
  };
  const pull = (headers: Record<string, string> = {}) => fetch(`${authed.url}/v2/library/private/manifests/1`, { headers: { accept: OCI_MANIFEST, ...headers } });

  it('replays for a Bearer token that may pull, naming its user in the access line', async () => {
    const token = await tokenFor('repository:library/private:pull');
    const first = await pull({ authorization: `Bearer ${token}` });
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const again = await pull({ authorization: `Bearer ${token}` });
    expect(again.status).toBe(200);
    expect(again.headers.get('docker-content-digest')).toBe(v1.manifestDigest);
    await again.arrayBuffer();
    expect(authedReplays).toBe(1);
    for (let i = 0; i < 200 && !authed.logs().some((l) => l.msg === 'request' && l.cache === 'hit'); i++) await sleep(10);
    expect(authed.logs().filter((l) => l.msg === 'request' && l.cache === 'hit').at(-1)).toMatchObject({ user: 'alice', status: 200, route: 'manifest' });
  });

  it('leaves callers without the right to the gate: 401 with its challenge, insufficient_scope, Basic', async () => {
    const before = authedReplays;
    const anonymous = await pull();
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('scope="repository:library/private:pull"');
    const otherScope = await pull({ authorization: `Bearer ${await tokenFor('repository:library/other:pull')}` });
    expect(otherScope.status).toBe(401);
    expect(otherScope.headers.get('www-authenticate')).toContain('insufficient_scope');
    const bad = await pull({ authorization: 'Bearer not-a-token' });
    expect(bad.status).toBe(401);
    const basic = await pull({ authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` });
    expect(basic.status).toBe(200);
    expect(authedReplays).toBe(before);
  });
});
