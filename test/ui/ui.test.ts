// The web UI in a real browser (Debian's chromium) against a mirror on loopback whose upstream is a real
// docker-registry filled by skopeo: the dashboard's hit ratio moves after pulls, search finds a
// repository, the image page lists the image's layers and config, a copied pull command works with
// podman, deleting a hosted tag drops it from tags/list; each view passes axe-core's scan.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot, seriousAxeViolations, warmAndWait } from '../support/browser.ts';
import { buildImage, buildIndex, pushImage, skopeoCopy, type BuiltImage, type BuiltIndex } from '../support/images.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { createPodman, type Podman } from '../support/podman.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let work: string;
let registry: RunningRegistry;
let mirror: RunningMirror;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let podman: Podman;
let alpine: BuiltImage;
let app: BuiltImage;
let multi: BuiltIndex;
/** Waits for the page a click leads to, generously: CI machines are loaded. */
const POLL = { timeout: 15_000 };

beforeAll(async () => {
  work = await makeTempDir('ui-test');
  registry = await startRegistry();
  alpine = await buildImage(join(work, 'alpine'), { tag: '3.20', layers: [{ files: { 'etc/os-release': 'ID=test\n' } }, { randomBytes: 48 * 1024, seed: 'ui-alpine' }] });
  await pushImage(alpine, registry, 'library/alpine:3.20');
  await pushImage(alpine, registry, 'library/warmme:1');
  multi = await buildIndex(join(work, 'multi'), {
    tag: '1',
    platforms: [
      { os: 'linux', architecture: 'amd64', layers: [{ randomBytes: 8 * 1024, seed: 'ui-multi-amd64' }] },
      { os: 'linux', architecture: 'arm64', layers: [{ randomBytes: 8 * 1024, seed: 'ui-multi-arm64' }] },
    ],
  });
  await pushImage(multi, registry, 'library/multi:1', { all: true });
  mirror = await startMirror({ hosted: { namespaces: ['lab'] }, cache: { maxSize: '1GiB' }, upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  app = await buildImage(join(work, 'app'), { tag: '1', layers: [{ files: { 'app/run': '#!/bin/sh\necho app\n' } }] });
  await skopeoCopy(app.ociRef, `docker://${mirror.host}/lab/app:1`);
  await skopeoCopy(app.ociRef, `docker://${mirror.host}/lab/app:2`);
  const registriesConf = join(work, 'registries.conf');
  await writeFile(registriesConf, 'unqualified-search-registries = []\n');
  podman = await createPodman(registriesConf);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: mirror.url });
  page = await context.newPage();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await podman?.dispose();
  await mirror?.dispose();
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

async function expectAccessible(name: string): Promise<void> {
  await screenshot(page, name);
  expect(await seriousAxeViolations(page)).toEqual([]);
}

describe('the web UI in chromium', () => {
  it('shows the hit ratio moving on the dashboard after pulls', async () => {
    await page.goto(`${mirror.url}/`);
    expect(await page.getByTestId('hit-ratio-hour').textContent()).toBe('–');
    // A cold pull (misses), then the same pull again (hits).
    for (const run of ['cold', 'warm']) await skopeoCopy(`docker://${mirror.host}/library/alpine:3.20`, `oci:${join(work, `pulled-${run}`)}:x`);
    await page.reload();
    const ratio = await page.getByTestId('hit-ratio-hour').textContent();
    expect(ratio).toMatch(/^\d+ %$/);
    expect(Number(ratio!.replace(' %', ''))).toBeGreaterThan(0);
    expect(await page.locator('svg[role=img]').count()).toBeGreaterThanOrEqual(2);
    await expectAccessible('dashboard');
  });

  it('shows a download in progress with its progress', async () => {
    const slow = await buildImage(join(work, 'slow'), { tag: '1', layers: [{ randomBytes: 1024 * 1024, seed: 'ui-slow' }] });
    await pushImage(slow, registry, 'library/slow:1');
    // The upstream drips its bodies, so the download is still running when the page is looked at.
    const proxy = await startFaultProxy(registry.url, { fault: { dripBytesPerSec: 128 * 1024 } });
    const dripping = await startMirror({ upstreams: [{ name: 'docker.io', url: proxy.url, default: true }] });
    try {
      const layer = slow.layers[0]!;
      const download = fetch(`${dripping.url}/v2/library/slow/blobs/${layer.digest}`).then((res) => res.arrayBuffer());
      await expect
        .poll(async () => {
          await page.goto(`${dripping.url}/`);
          return page.locator('section[aria-labelledby=downloads] progress').count();
        }, POLL)
        .toBe(1);
      const row = await page.locator('section[aria-labelledby=downloads] tbody tr').textContent();
      expect(row).toContain(layer.digest.slice(0, 19));
      expect(row).toContain('of 1.00 MiB');
      expect((await download).byteLength).toBe(layer.size);
    } finally {
      await dripping.dispose();
      await proxy.stop();
    }
  });

  it('finds a repository by search', async () => {
    await page.goto(`${mirror.url}/`);
    await page.getByRole('link', { name: 'Repositories' }).click();
    await page.getByLabel('Search repositories').fill('alp');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.getByTestId('repository-count').textContent(), POLL).toContain('1 repository');
    expect(await page.getByRole('link', { name: 'library/alpine' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'lab/app' }).count()).toBe(0);
    await page.getByLabel('Search repositories').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.getByTestId('repository-count').textContent(), POLL).toContain('2 repositories');
    await expectAccessible('repositories');
  });

  it('lists the image’s layers and config', async () => {
    await page.goto(`${mirror.url}/ui/repositories`);
    await page.getByRole('link', { name: 'library/alpine' }).click();
    await page.waitForURL(/\/ui\/repository\?name=library%2Falpine$/);
    await expectAccessible('repository');
    await page.getByRole('link', { name: '3.20', exact: true }).click();
    expect(await page.getByTestId('image-digest').textContent()).toBe(alpine.manifestDigest);
    const layers = await page.locator('[data-testid=layers] code[data-digest]').allTextContents();
    expect(layers).toEqual(alpine.layers.map((l) => l.digest));
    const config = await page.getByTestId('config').textContent();
    expect(config).toContain('["/bin/sh"]');
    expect(config).toContain('PATH=/usr/local/sbin');
    expect(await page.locator('td code', { hasText: 'ocimirror test layer 1' }).count()).toBe(1);
    await expectAccessible('image');
  });

  it('lists an index’s platforms, and each platform’s layers', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/multi:1`, `oci:${join(work, 'pulled-multi')}:1`, { all: true });
    await page.goto(`${mirror.url}/ui/image?name=library/multi&ref=1`);
    expect(await page.getByTestId('image-digest').textContent()).toBe(multi.indexDigest);
    await page.getByRole('link', { name: 'linux/arm64' }).click();
    await page.waitForURL(/platform=linux%2Farm64/);
    const arm = multi.manifests.find((m) => m.platform.architecture === 'arm64')!;
    expect(await page.getByTestId('image-digest').textContent()).toBe(arm.manifestDigest);
    expect(await page.locator('[data-testid=layers] code[data-digest]').allTextContents()).toEqual(arm.layers.map((l) => l.digest));
    expect(await seriousAxeViolations(page)).toEqual([]);
  });

  it('gives a pull command that works when copied into podman', async () => {
    await page.goto(`${mirror.url}/ui/repository?name=lab/app&tag=1`);
    await page.getByRole('button', { name: 'Copy the podman command' }).click();
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()'), POLL).toContain('podman pull');
    const copied = (await page.evaluate('navigator.clipboard.readText()')) as string;
    expect(copied).toBe(`podman pull --tls-verify=false ${mirror.host}/lab/app:1`);
    const [command, ...args] = copied.split(' ');
    expect(command).toBe('podman');
    // Exactly the copied arguments (the test's podman has storage and config of its own).
    await podman.run(args);
    expect(await podman.images()).toContain(`${mirror.host}/lab/app:1`);
  });

  it('deletes a hosted tag, which tags/list then no longer lists', async () => {
    const tags = async () => ((await (await fetch(`${mirror.url}/v2/lab/app/tags/list`)).json()) as { tags: string[] }).tags;
    expect(await tags()).toEqual(['1', '2']);
    await page.goto(`${mirror.url}/ui/repository?name=lab/app`);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete tag 2' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), POLL).toContain('Removed the tag 2');
    expect(await tags()).toEqual(['1']);
    expect(await page.locator('tr[data-tag="2"]').count()).toBe(0);
  });

  it('warms pasted images and shows them arriving', async () => {
    await warmAndWait(page, mirror.url, '# a comment\nlibrary/warmme:1\n');
    // Its layers and config are alpine's, which the mirror holds already: content-addressed, they come from the cache.
    expect(await page.locator('[data-testid=warms]').textContent()).toContain(`1 image manifest(s); blobs from cache ${alpine.layers.length + 1}, from upstream 0`);
    expect(await mirror.runtime.deps.meta.listTags('docker.io', 'library/warmme')).toEqual(['1']);
    await expectAccessible('warm');
    // A reference that is no reference is refused with the reason, the others are kept in the form.
    await page.getByLabel('Images, one per line (# comments)').fill('Not/A/Ref::x');
    await page.getByRole('button', { name: 'Warm' }).click();
    expect(await page.getByRole('alert').count()).toBe(1);
  });

  it('drops a cached tag (an admin action: this browser is on the mirror’s host)', async () => {
    await page.goto(`${mirror.url}/ui/repository?name=library/warmme`);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Drop cached tag 1' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), POLL).toContain('Removed the tag 1');
    expect(await mirror.runtime.deps.meta.listTags('docker.io', 'library/warmme')).toEqual([]);
    // alpine shares every blob, so they all stay.
    expect((await fetch(`${mirror.url}/v2/library/alpine/manifests/3.20`, { method: 'HEAD' })).headers.get('x-ocimirror-cache')).toBe('hit');
  });

  it('runs garbage collection as a dry run', async () => {
    await page.goto(`${mirror.url}/ui/gc`);
    await page.getByRole('button', { name: 'Dry run' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /Dry run/ }).count(), POLL).toBe(1);
    await expectAccessible('gc');
  });
});
