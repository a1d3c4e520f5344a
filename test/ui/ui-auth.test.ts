// The web UI with client authentication on, in chromium: the htpasswd users log in; an admin creates a
// scoped token whose secret (shown once) `podman login` then accepts; a POST without the session's CSRF
// token is refused; a user who is no admin gets no token page, and sees only what they may pull.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot, seriousAxeViolations, warmAndWait } from '../support/browser.ts';
import { htpasswdLine } from '../support/htpasswd.ts';
import { buildImage, pushImage, skopeoCopy } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const ALICE = 'wonderland-1';
const BOB = 'builder-2';

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let browser: Browser;
let podman: Podman;

beforeAll(async () => {
  work = await makeTempDir('ui-auth-test');
  registry = await startRegistry();
  const image = await buildImage(join(work, 'img'), { tag: '1', layers: [{ files: { app: 'one\n' } }] });
  await pushImage(image, registry, 'library/alpine:3.8');
  const htpasswd = join(work, 'htpasswd');
  await writeFile(htpasswd, `${await htpasswdLine('alice', ALICE)}\n${await htpasswdLine('bob', BOB)}\n`);
  mirror = await startMirror({
    hosted: { namespaces: ['lab'] },
    auth: {
      htpasswd,
      rules: [
        { repos: ['lab/**'], users: ['alice'], actions: ['pull', 'push', 'delete'] },
        { repos: ['lab/shared/*'], users: ['bob'], actions: ['pull'] },
      ],
      admins: ['alice'],
    },
    upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
  });
  const creds = { destCreds: `alice:${ALICE}` };
  await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/app:1`, creds);
  await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/shared/tool:1`, creds);
  const registriesConf = join(work, 'registries.conf');
  await writeFile(registriesConf, 'unqualified-search-registries = []\n');
  podman = await createPodman(registriesConf);
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await podman?.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

async function logIn(user: string, password: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${mirror.url}/ui/repositories`);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${mirror.url}/ui/repositories`);
  return page;
}

describe('the web UI with client authentication on', () => {
  it('sends a visitor to the login page, refuses a wrong password, lets a user in', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${mirror.url}/`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await screenshot(page, 'login');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('Wrong user name or password');
    const cookie = (await page.context().cookies()).find((c) => c.name === 'ocimirror_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill(ALICE);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${mirror.url}/`);
    expect(await page.getByText('Signed in as').textContent()).toContain('alice');
  });

  it('creates a token whose secret podman login accepts', async () => {
    const page = await logIn('alice', ALICE);
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Name').fill('ci');
    await page.getByLabel('Repositories (globs, comma-separated)').fill('lab/**');
    await page.getByLabel('push').check();
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.getByTestId('token-secret').textContent()) ?? '';
    expect(secret).toMatch(/^ocm_[A-Za-z0-9_-]{43}$/);
    expect(await page.getByRole('cell', { name: 'ci', exact: true }).count()).toBe(1);
    expect(await seriousAxeViolations(page)).toEqual([]);
    await podman.run(['login', '--tls-verify=false', '-u', 'ci', '-p', secret, mirror.host]);
    const wrong = await podman.run(['login', '--tls-verify=false', '-u', 'ci', '-p', `${secret.slice(0, -1)}x`, mirror.host]).catch((err: Error) => err);
    expect(wrong).toBeInstanceOf(Error);
    // The listing shows no secret again.
    await page.goto(`${mirror.url}/ui/tokens`);
    expect(await page.content()).not.toContain(secret);
    await screenshot(page, 'tokens');
    expect(await seriousAxeViolations(page)).toEqual([]);
  });

  it('refuses a POST without the session’s CSRF token', async () => {
    const page = await logIn('alice', ALICE);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'ocimirror_session')!;
    const post = (form: Record<string, string>) =>
      fetch(`${mirror.url}/ui/tokens`, { method: 'POST', redirect: 'manual', headers: { cookie: `${cookie.name}=${cookie.value}` }, body: new URLSearchParams(form) });
    const form = { name: 'forged', repos: 'lab/**', actions: 'pull', expires: '1d' };
    const without = await post(form);
    expect(without.status).toBe(403);
    expect(await without.text()).toContain('CSRF token is missing or stale');
    expect((await post({ ...form, _csrf: 'guessed' })).status).toBe(403);
    // The same form with the page's token is accepted: the refusal was the token's.
    const csrf = await page.locator('input[name=_csrf]').first().getAttribute('value');
    const withToken = await post({ ...form, _csrf: csrf! });
    expect(withToken.status).toBe(200);
    expect((await mirror.runtime.registry.auth!.tokens.list()).map((t) => t.name)).toEqual(['ci', 'forged']);
  });

  it('warms as the visitor: what they may pull, with their rights', async () => {
    const alice = await logIn('alice', ALICE);
    await warmAndWait(alice, mirror.url, 'lab/app:1');
    const bob = await logIn('bob', BOB);
    await bob.goto(`${mirror.url}/ui/warm`);
    // Each sees their own warms.
    expect(await bob.locator('[data-testid=warms]').count()).toBe(0);
    await bob.getByLabel('Images, one per line (# comments)').fill('lab/app:1');
    await bob.getByRole('button', { name: 'Warm' }).click();
    expect(await bob.getByRole('alert').textContent()).toContain('you may not pull lab/app');
  });

  it('shows a user who is no admin only what they may pull, and no token page', async () => {
    const page = await logIn('bob', BOB);
    expect(await page.getByRole('link', { name: 'lab/shared/tool' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'lab/app' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    const res = await page.goto(`${mirror.url}/ui/tokens`);
    expect(res?.status()).toBe(403);
    const denied = await page.goto(`${mirror.url}/ui/repository?name=lab/app`);
    expect(denied?.status()).toBe(403);
  });
});
