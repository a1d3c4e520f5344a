// Client authentication as a registry must do it: the token flow's 401 challenge, the token endpoint,
// rules (403 DENIED), anonymous pulls of mirrored public content only, private upstreams, scoped tokens
// that expire and are revoked at once, refused forgeries, failed-login limits per address, and logs
// that never hold a secret. (Real clients logging in: test/clients/auth-clients.test.ts.)
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../support/binaries.ts';
import { runOcimirror } from '../support/cli.ts';
import { runCommand } from '../support/command.ts';
import { htpasswdLine } from '../support/htpasswd.ts';
import { buildImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ALICE = 'wonderland-1';
const BOB = 'builder-2';

let work: string;
let registry: RunningRegistry;
let image: BuiltImage;
let dataDir: string;
let configFile: string;
let mirror: RunningMirror;
/** A key retired two hours ago (replaced an hour ago by another): tokens it signs must be refused. */
let retired: { kid: string; jwk: JWK };

const config = (htpasswd: string, data: string) => ({
  dataDir: data,
  hosted: { namespaces: ['lab'] },
  log: { level: 'trace' as const },
  auth: {
    htpasswd,
    tokenTtl: '5m',
    maxFailuresPerAddress: 10,
    rules: [
      { repos: ['lab/**'], users: ['alice'], actions: ['pull' as const, 'push' as const, 'delete' as const] },
      { repos: ['lab/shared/*'], groups: ['readers'], actions: ['pull' as const] },
      { repos: ['private.example/**'], users: ['alice'], actions: ['pull' as const] },
    ],
    groups: { readers: ['bob'] },
    admins: ['alice'],
  },
});

beforeAll(async () => {
  work = await makeTempDir('client-auth-test');
  registry = await startRegistry();
  image = await buildImage(join(work, 'img'), { tag: '1', layers: [{ files: { app: 'one\n' } }] });
  await skopeoCopy(image.ociRef, `docker://${registry.host}/library/alpine:3.8`);
  await skopeoCopy(image.ociRef, `docker://${registry.host}/org/secret:1`);
  const htpasswd = join(work, 'htpasswd');
  await writeFile(htpasswd, `${await htpasswdLine('alice', ALICE)}\n${await htpasswdLine('bob', BOB)}\n`);
  dataDir = join(work, 'data');
  // Two signing keys made beforehand: the older was replaced an hour ago, long past its grace.
  const keysDir = join(dataDir, 'auth', 'keys');
  await mkdir(keysDir, { recursive: true });
  const now = Date.now();
  for (const [kid, age] of [['retired0000000', 2 * 3_600_000], ['current000000', 3_600_000]] as const) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    await writeFile(join(keysDir, `${kid}.json`), JSON.stringify({ kid, createdAt: now - age, privateJwk: jwk }));
    if (kid.startsWith('retired')) retired = { kid, jwk };
  }
  const input = {
    ...config(htpasswd, dataDir),
    upstreams: [
      { name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true, overrides: true },
      { name: 'private.example', url: registry.url, aliases: ['private.example'], private: true },
    ],
  };
  configFile = join(work, 'ocimirror.yaml');
  await writeFile(configFile, JSON.stringify(input));
  mirror = await startMirror(input);
  await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/app:1`, { destCreds: `alice:${ALICE}` });
  await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/shared/tool:1`, { destCreds: `alice:${ALICE}` });
}, 300_000);

afterAll(async () => {
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const get = (path: string, headers: Record<string, string> = {}, init: RequestInit = {}) => fetch(`${mirror.url}${path}`, { ...init, headers: { accept: OCI_MANIFEST, ...headers } });
const code = async (res: Response) => ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;
async function tokenFor(scope: string, credentials?: string): Promise<string> {
  const res = await get(`/auth/token?service=ocimirror&scope=${encodeURIComponent(scope)}`, credentials ? { authorization: credentials } : {});
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

/** A GET from a chosen loopback source address (fetch cannot pick one). */
function getFrom(localAddress: string, path: string, authorization: string): Promise<number> {
  const url = new URL(mirror.url);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path, localAddress, headers: { authorization }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

describe('the registry token flow', () => {
  it('challenges with the token realm, service and scope; GET /v2/ needs credentials', async () => {
    const base = await get('/v2/');
    expect(base.status).toBe(401);
    expect(base.headers.get('www-authenticate')).toBe(`Bearer realm="${mirror.url}/auth/token",service="ocimirror"`);
    const hosted = await get('/v2/lab/app/manifests/1');
    expect(hosted.status).toBe(401);
    expect(await code(hosted)).toBe('UNAUTHORIZED');
    expect(hosted.headers.get('www-authenticate')).toContain('scope="repository:lab/app:pull"');
    const push = await get('/v2/lab/app/blobs/uploads/', {}, { method: 'POST' });
    expect(push.headers.get('www-authenticate')).toContain('scope="repository:lab/app:pull,push"');
    expect((await get('/v2/', { authorization: basic('alice', ALICE) })).status).toBe(200);
    expect((await get('/v2/', { authorization: basic('alice', 'wrong') })).status).toBe(401);
  });

  it('issues tokens that grant the intersection of what was asked and what the caller may do', async () => {
    const alice = await tokenFor('repository:lab/app:pull,push,delete repository:library/alpine:pull,push', basic('alice', ALICE));
    expect(claims(alice).access).toEqual([
      { type: 'repository', name: 'lab/app', actions: ['pull', 'push', 'delete'] },
      { type: 'repository', name: 'library/alpine', actions: ['pull'] },
    ]);
    expect(claims(alice).aud).toBe('ocimirror');
    const anonymous = await tokenFor('repository:lab/app:pull repository:library/alpine:pull');
    expect(claims(anonymous).access).toEqual([{ type: 'repository', name: 'library/alpine', actions: ['pull'] }]);
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${alice}` })).status).toBe(200);
    // The OAuth2 password grant docker login uses.
    const form = new URLSearchParams({ grant_type: 'password', username: 'bob', password: BOB, service: 'ocimirror', scope: 'repository:lab/shared/tool:pull', client_id: 'docker' });
    const posted = await fetch(`${mirror.url}/auth/token`, { method: 'POST', body: form });
    expect(posted.status).toBe(200);
    const bob = ((await posted.json()) as { access_token: string }).access_token;
    expect((await get('/v2/lab/shared/tool/manifests/1', { authorization: `Bearer ${bob}` })).status).toBe(200);
    const wrong = await fetch(`${mirror.url}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'bob', password: 'nope' }) });
    expect(wrong.status).toBe(401);
  });

  it('answers 403 DENIED to an authenticated caller without the right, and lists only what each may pull', async () => {
    const denied = await get('/v2/lab/app/manifests/1', { authorization: basic('bob', BOB) });
    expect(denied.status).toBe(403);
    expect(await code(denied)).toBe('DENIED');
    const catalog = async (headers: Record<string, string>) => ((await (await get('/v2/_catalog', headers)).json()) as { repositories: string[] }).repositories;
    expect(await catalog({ authorization: basic('alice', ALICE) })).toEqual(expect.arrayContaining(['lab/app', 'lab/shared/tool']));
    expect(await catalog({ authorization: basic('bob', BOB) })).toEqual(['lab/shared/tool']);
    expect(await catalog({})).toEqual([]);
    // A catalog token (no repository grants) lists what its holder may pull, as podman search uses it.
    const catalogToken = await tokenFor('registry:catalog:*', basic('bob', BOB));
    expect(await catalog({ authorization: `Bearer ${catalogToken}` })).toEqual(['lab/shared/tool']);
    // Once the anonymous client has pulled it, library/alpine is cached and listed for everyone.
    expect((await get('/v2/library/alpine/manifests/3.8')).status).toBe(200);
    expect(await catalog({})).toEqual(['library/alpine']);
  });

  it('lets anonymous clients pull mirrored public content, never private upstreams or pushes to overrides', async () => {
    const out = join(work, 'anonymous-pull');
    await skopeoCopy(`docker://${mirror.host}/library/alpine:3.8`, `oci:${out}:1`);
    expect((await get('/v2/private.example/org/secret/manifests/1')).status).toBe(401);
    expect((await get('/v2/private.example/org/secret/manifests/1', { authorization: basic('bob', BOB) })).status).toBe(403);
    expect((await get('/v2/private.example/org/secret/manifests/1', { authorization: basic('alice', ALICE) })).status).toBe(200);
    const override = await skopeoCopy(image.ociRef, `docker://${mirror.host}/library/alpine:mine`, { destCreds: `alice:${ALICE}` }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(override?.message).toMatch(/denied/i);
    expect(mirror.logs().some((l) => l.msg === 'request' && l.status === 403 && String(l.path).startsWith('/v2/library/alpine/'))).toBe(true);
  });
});

describe('operations', () => {
  it('re-reads the htpasswd file when it changes: a user added while running can log in', async () => {
    const htpasswd = join(work, 'htpasswd');
    expect((await get('/v2/', { authorization: basic('carol', 'new-user-3') })).status).toBe(401);
    await writeFile(htpasswd, `${await readFile(htpasswd, 'utf8')}${await htpasswdLine('carol', 'new-user-3')}\n`);
    await sleep(1_200); // the file's mtime is looked at once a second
    expect((await get('/v2/', { authorization: basic('carol', 'new-user-3') })).status).toBe(200);
  });

  it('rotates the signing key without cutting live tokens off', async () => {
    const before = await tokenFor('repository:lab/app:pull', basic('alice', ALICE));
    const rotated = await runOcimirror(['token', 'rotate-key', '--config', configFile]);
    expect(rotated.code, rotated.stderr).toBe(0);
    await sleep(2_200); // the keys directory is looked at every 2 s
    const after = await tokenFor('repository:lab/app:pull', basic('alice', ALICE));
    const kid = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
    expect(kid(after)).not.toBe(kid(before));
    for (const jwt of [before, after]) expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${jwt}` })).status).toBe(200);
  });

  it('lets only admins use the admin API and the operator commands', async () => {
    const admin = (headers: Record<string, string>) => fetch(`${mirror.adminUrl}/_ocimirror/repositories`, { headers }).then((r) => r.status);
    expect(await admin({})).toBe(401);
    expect(await admin({ authorization: basic('bob', BOB) })).toBe(403);
    expect(await admin({ authorization: basic('alice', ALICE) })).toBe(200);
    const refused = await runOcimirror(['ls', '--admin', mirror.adminUrl!]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('UNAUTHORIZED');
    const listed = await runOcimirror(['ls', '--admin', mirror.adminUrl!], { env: { OCIMIRROR_ADMIN_AUTH: `alice:${ALICE}` } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^lab\/app\s+hosted\s+1$/m);
  });

  it('refuses an htpasswd file with other hash kinds at start, in one line, exit 2', async () => {
    const md5 = join(work, 'htpasswd-md5');
    await runCommand(requireBinary('htpasswd', 'apache2-utils'), ['-cbm', md5, 'mallory', 'md5-is-too-cheap']);
    const file = join(work, 'md5.yaml');
    await writeFile(file, JSON.stringify({ listen: '127.0.0.1:0', admin: false, dataDir: join(work, 'md5-data'), auth: { htpasswd: md5 }, upstreams: [{ name: 'docker.io', url: registry.url, default: true }] }));
    const started = await runOcimirror(['serve', '--config', file], { timeoutMs: 30_000 });
    expect(started.code).toBe(2);
    expect(started.stderr.trim().split('\n')).toHaveLength(1);
    expect(started.stderr).toContain('only bcrypt entries are accepted (create them with `htpasswd -B`)');
    expect(started.stderr).not.toContain('md5-is-too-cheap');
  });

  it('can refuse anonymous pulls altogether (anonymous: [])', async () => {
    const closed = await startMirror({
      auth: { anonymous: [], rules: [] },
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
    });
    try {
      const res = await fetch(`${closed.url}/v2/library/alpine/manifests/3.8`, { headers: { accept: OCI_MANIFEST } });
      expect(res.status).toBe(401);
      const token = ((await (await fetch(`${closed.url}/auth/token?scope=repository:library/alpine:pull`)).json()) as { token: string }).token;
      expect(claims(token).access).toEqual([]);
    } finally {
      await closed.dispose();
    }
  });
});

describe('scoped tokens', () => {
  const cli = (...args: string[]) => runOcimirror(['token', ...args, '--config', configFile]);

  it('push what they are scoped to, are denied elsewhere, show their last use, and stop at once when removed', async () => {
    const created = await cli('create', '--name', 'ci', '--repos', 'lab/app,lab/tools/*', '--actions', 'pull,push', '--expires', '30d', '--quiet');
    expect(created.code, created.stderr).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^ocm_/);
    expect(created.stderr).toContain('"msg":"token created"');
    expect(created.stderr).not.toContain(secret);
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/tools/x:1`, { destCreds: `ci:${secret}` });
    const other = await get('/v2/lab/other/manifests/1', { authorization: basic('ci', secret) });
    expect(other.status).toBe(403);
    const listed = await cli('ls');
    expect(listed.stdout).toMatch(/^ci\s+lab\/app,lab\/tools\/\*\s+pull,push\s+\S+.*\s+\d{4}-\d\d-\d\d/m);
    expect(listed.stdout).not.toMatch(/^ci .*never$/m);
    const bearer = await tokenFor('repository:lab/app:pull', basic('ci', secret));
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${bearer}` })).status).toBe(200);
    expect((await cli('rm', 'ci')).code).toBe(0);
    await sleep(1_100); // lookups are reused for a second
    expect((await get('/v2/lab/app/manifests/1', { authorization: basic('ci', secret) })).status).toBe(401);
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${bearer}` })).status).toBe(401);
  });

  it('do not bring an old Bearer token back to life when a token of the same name is created again', async () => {
    const first = (await cli('create', '--name', 'again', '--repos', 'lab/app', '--actions', 'pull', '--expires', '1h', '--quiet')).stdout.trim();
    const bearer = await tokenFor('repository:lab/app:pull', basic('again', first));
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${bearer}` })).status).toBe(200);
    expect((await cli('rm', 'again')).code).toBe(0);
    const second = (await cli('create', '--name', 'again', '--repos', 'lab/**', '--actions', 'pull', '--expires', '1h', '--quiet')).stdout.trim();
    await sleep(1_100);
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${bearer}` })).status).toBe(401);
    expect((await get('/v2/lab/app/manifests/1', { authorization: basic('again', second) })).status).toBe(200);
  });

  it('are refused once expired', async () => {
    const created = await cli('create', '--name', 'short', '--repos', 'lab/app', '--actions', 'pull', '--expires', '2s', '--quiet');
    const secret = created.stdout.trim();
    expect((await get('/v2/lab/app/manifests/1', { authorization: basic('short', secret) })).status).toBe(200);
    await sleep(3_100);
    expect((await get('/v2/lab/app/manifests/1', { authorization: basic('short', secret) })).status).toBe(401);
  });

  it('refuse a CLI mistake with one line and exit 2', async () => {
    const bad = await cli('create', '--name', 'x', '--repos', 'lab/app', '--actions', 'fly', '--expires', '1d');
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toContain('unknown action fly');
  });
});

describe('attacks', () => {
  const sign = async (payload: Record<string, unknown>, key: { kid: string; jwk: JWK }, header: Record<string, unknown> = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: key.kid, ...header }).sign(await importJWK(key.jwk, 'ES256'));
  const currentKey = async () => {
    const dir = join(dataDir, 'auth', 'keys');
    const name = (await readdir(dir)).find((n) => n.startsWith('current'))!;
    const stored = JSON.parse(await readFile(join(dir, name), 'utf8')) as { kid: string; privateJwk: JWK };
    return { kid: stored.kid, jwk: stored.privateJwk };
  };
  const now = () => Math.floor(Date.now() / 1000);
  const valid = () => ({ iss: 'ocimirror', sub: 'alice', sub_kind: 'user', aud: 'ocimirror', iat: now(), nbf: now() - 5, exp: now() + 300, access: [{ type: 'repository', name: 'lab/app', actions: ['pull'] }] });
  const tryToken = async (jwt: string) => (await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${jwt}` })).status;

  it('accepts a token signed with the current key, and refuses every forgery', async () => {
    const key = await currentKey();
    expect(await tryToken(await sign(valid(), key))).toBe(200);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(valid())).toString('base64url')}.`;
    expect(await tryToken(unsigned), 'alg none').toBe(401);
    const good = await sign(valid(), key);
    const [h, p, s] = good.split('.') as [string, string, string];
    const tamperedPayload = Buffer.from(JSON.stringify({ ...valid(), access: [{ type: 'repository', name: 'lab/app', actions: ['pull', 'push', 'delete'] }] })).toString('base64url');
    expect(await tryToken(`${h}.${tamperedPayload}.${s}`), 'tampered payload').toBe(401);
    expect(await tryToken(`${h}.${p}.${s.slice(0, -4)}AAAA`), 'tampered signature').toBe(401);
    expect(await tryToken(await sign({ ...valid(), aud: 'another-registry' }, key)), 'other service').toBe(401);
    expect(await tryToken(await sign({ ...valid(), exp: now() - 60, iat: now() - 400, nbf: now() - 400 }, key)), 'expired').toBe(401);
    expect(await tryToken(await sign(valid(), retired)), 'retired key past its grace').toBe(401);
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    expect(await tryToken(await sign(valid(), { kid: key.kid, jwk: await exportJWK(privateKey) })), 'foreign key, our kid').toBe(401);
    // A token for another repository: a new one is needed (401 insufficient_scope) — or it is denied outright.
    const scoped = await get('/v2/lab/shared/tool/manifests/1', { authorization: `Bearer ${await sign(valid(), key)}` });
    expect(scoped.status).toBe(401);
    expect(scoped.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect((await get('/v2/lab/app/manifests/1', { authorization: `Bearer ${await sign({ ...valid(), sub: 'bob' }, key)}` })).status).toBe(403);
  });

  it('limits failed logins per address: 50 wrong passwords get 429, the right one from 127.0.0.2 still works', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push(await getFrom('127.0.0.1', '/v2/', basic('alice', `guess-${i}`)));
    // At most 10 failed logins a minute per address (earlier tests may have spent some): all 50 attempts
    // fall in one minute, so at most 10 of them were checked, the rest were turned away.
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.slice(-30).every((s) => s === 429)).toBe(true);
    expect(await getFrom('127.0.0.1', '/v2/', basic('alice', ALICE))).toBe(429);
    expect(await getFrom('127.0.0.2', '/v2/', basic('alice', ALICE))).toBe(200);
    const limited = await fetch(`${mirror.url}/v2/`, { headers: { authorization: basic('alice', 'x') } });
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('never logs a password, a token secret, a token or the signing key, even at trace level', async () => {
    const text = mirror.logText();
    expect(text).toContain('"msg":"login failed"');
    for (const secret of [ALICE, BOB, 'guess-3']) expect(text).not.toContain(secret);
    const key = await currentKey();
    expect(text).not.toContain(String(key.jwk.d));
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/); // no JWT
    expect(text).not.toMatch(/ocm_[A-Za-z0-9_-]{20}/); // no token secret
  });
});
