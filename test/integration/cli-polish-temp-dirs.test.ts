// Test runs leave no temp directories behind. vitest's workers are killed, not exited, so tmp.ts's exit
// handler never runs in them: a test that skips its cleanup (a failure, an oversight) leaves its dirs in
// /tmp. test/support/temp-root.ts, as the run's globalSetup, puts every temp dir of the run under one
// directory and removes it at the end. Shown here with a real nested vitest run, with and without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/cli.ts';
import { NODE } from '../support/cli-env.ts';
import { runCommand } from '../support/command.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const VITEST = join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');

let work: string;

beforeAll(async () => {
  work = await makeTempDir('temp-dirs');
  await writeFile(
    join(work, 'leaky.test.ts'),
    [
      `import { makeTempDir } from ${JSON.stringify(join(REPO_ROOT, 'test/support/tmp.ts'))};`,
      "test('forgets its cleanup', async () => { await makeTempDir('leaky'); });",
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  if (work) await removeTempDir(work);
});

/** Runs the leaky test file in a nested vitest (as `npm test` runs ours) with `tmp` as TMPDIR; returns what is left there. */
async function leftAfterRun(name: string, globalSetup: string[]): Promise<string[]> {
  const tmp = join(work, `${name}-tmp`);
  const config = join(work, `${name}.config.mjs`);
  await mkdir(tmp, { recursive: true });
  await writeFile(config, `export default { test: { include: ['leaky.test.ts'], pool: 'forks', globals: true, globalSetup: ${JSON.stringify(globalSetup)} } };\n`);
  await runCommand(NODE, [VITEST, 'run', '--root', work, '--config', config], { cwd: work, env: { PATH: process.env.PATH, TMPDIR: tmp } });
  return readdir(tmp);
}

describe('temp directories of a test run', () => {
  it('are left behind by a worker without the run-wide temp root', async () => {
    expect((await leftAfterRun('without', [])).filter((name) => name.startsWith('leaky-'))).toHaveLength(1);
  }, 120_000);

  it('are all removed at the end of a run with test/support/temp-root.ts as globalSetup', async () => {
    expect(await leftAfterRun('with', [join(REPO_ROOT, 'test/support/temp-root.ts')])).toEqual([]);
  }, 120_000);
});
