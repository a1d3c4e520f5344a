// Upstreams that need credentials: a registry with htpasswd (Basic) and one with `auth: token` (Bearer,
// tokens from a small issuer). Clients of the mirror send no credentials; the mirror's never leak.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildImage, manifestDigestOf, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { errorCode, rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { STORE_KINDS, setUpStore, type StoreSetup } from '../support/store-kinds.ts';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const BASIC_PASSWORD = 'basic-Secret-4711';
const TOKEN_PASSWORD = 'token-Secret-0815';

let work: string;
let basicRegistry: RunningRegistry;
let tokenRegistry: RunningRegistry;
let issuer: TokenIssuer;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('auth-test');
  issuer = await startTokenIssuer({ users: { puller: TOKEN_PASSWORD } });
  [basicRegistry, tokenRegistry] = await Promise.all([
    startRegistry({ auth: { kind: 'htpasswd', username: 'puller', password: BASIC_PASSWORD } }),
    startRegistry({ auth: { kind: 'token', issuer } }),
  ]);
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ files: { a: '1' } }, { randomBytes: 20_000, seed: 'auth' }] });
  await pushImage(image, basicRegistry, 'private/app:v1', { destCreds: `puller:${BASIC_PASSWORD}` });
  await pushImage(image, tokenRegistry, 'private/app:v1', { destCreds: `puller:${TOKEN_PASSWORD}` });
}, 300_000);

afterAll(async () => {
  await Promise.all([basicRegistry?.dispose(), tokenRegistry?.dispose()]);
  await issuer?.stop();
  if (work) await removeTempDir(work);
});

describe.each(STORE_KINDS)('upstream authentication (%s metadata store)', (kind) => {
  let store: StoreSetup;
  let mirror: RunningMirror;

  beforeAll(async () => {
    store = await setUpStore(kind);
    mirror = await startMirror({
      ...store.config,
      env: { BASIC_PASSWORD },
      upstreams: [
        { name: 'basic', url: basicRegistry.url, aliases: ['basic.example'], credentials: { username: 'puller', passwordEnv: 'BASIC_PASSWORD' } },
        { name: 'token', url: tokenRegistry.url, aliases: ['token.example'], credentials: { username: 'puller', password: TOKEN_PASSWORD } },
        { name: 'nocreds', url: tokenRegistry.url, aliases: ['nocreds.example'] },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await mirror?.dispose();
    await store?.dispose();
  });

  it('pulls from a Basic-auth upstream with the configured credentials', async () => {
    await skopeoCopy(`docker://${mirror.host}/basic.example/private/app:v1`, `oci:${join(work, `${kind}-basic`)}:x`);
    expect(await manifestDigestOf(`docker://${mirror.host}/basic.example/private/app:v1`)).toBe(image.manifestDigest);
  }, 120_000);

  it('pulls from a Bearer-token upstream, fetching tokens from its realm', async () => {
    await skopeoCopy(`docker://${mirror.host}/token.example/private/app:v1`, `oci:${join(work, `${kind}-token`)}:x`);
    expect(await manifestDigestOf(`docker://${mirror.host}/token.example/private/app:v1`)).toBe(image.manifestDigest);
    expect(issuer.issued().some((t) => t.user === 'puller' && t.scope.includes('repository:private/app:pull'))).toBe(true);
  }, 120_000);

  it('answers DENIED when the upstream refuses a mirror without credentials', async () => {
    const res = await rawRequest(mirror.url, { path: '/v2/private/app/manifests/v1?ns=nocreds.example' });
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe('DENIED');
  });

  it('never shows upstream credentials or tokens to clients or in its log', async () => {
    const res = await rawRequest(mirror.url, { path: '/v2/private/app/manifests/v1?ns=token.example', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.status).toBe(200);
    const seen = JSON.stringify(res.headers) + res.body.toString('latin1');
    const log = mirror.logText();
    for (const text of [seen, log]) {
      expect(text).not.toContain(BASIC_PASSWORD);
      expect(text).not.toContain(TOKEN_PASSWORD);
      expect(text).not.toContain(Buffer.from(`puller:${BASIC_PASSWORD}`).toString('base64'));
      expect(text).not.toMatch(/Bearer\s+ey/);
    }
    expect(res.headers['www-authenticate']).toBeUndefined();
  });
});
