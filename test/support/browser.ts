// Debian's chromium driven by playwright-core (never a browser playwright downloads): headless, without
// sandbox (tests run as root), without background networking (nothing but loopback is reached). Plus
// what every UI view is checked for: axe-core's accessibility scan, and its screenshot under docs/ui/
// when UPDATE_SCREENSHOTS=1 (otherwise the committed PNGs stay as they are).
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { requireBinary } from './binaries.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'ui');

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: requireBinary(CHROMIUM, 'chromium'),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: readonly { readonly target: readonly string[] }[];
}

/** axe-core's violations of impact serious or critical on the page as it is now. */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  const source = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, as an extension would run it: a script element
  // (page.addScriptTag) is inline script, which the UI's CSP rightly refuses.
  await page.evaluate(source);
  // A string: this code runs in the page, whose globals (document, axe) Node's types do not know.
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** docs/ui/<name>.png of the whole page, only when UPDATE_SCREENSHOTS=1 (keeps committed images from churning). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.UPDATE_SCREENSHOTS !== '1') return;
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Pastes `images` into the warm page and waits (reloading, as a visitor would) until the newest warm is done. */
export async function warmAndWait(page: Page, mirrorUrl: string, images: string): Promise<void> {
  await page.goto(`${mirrorUrl}/ui/warm`);
  await page.getByLabel('Images, one per line (# comments)').fill(images);
  await page.getByRole('button', { name: 'Warm' }).click();
  await expect
    .poll(async () => {
      await page.goto(`${mirrorUrl}/ui/warm`);
      return page.locator('[data-testid=warms] tr[data-state]').first().getAttribute('data-state');
    }, { timeout: 45_000 })
    .toBe('done');
}
