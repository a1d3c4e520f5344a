import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Directories still to delete when the test process exits, so a failed or
// forgotten cleanup does not leave registry data (possibly gigabytes) behind.
const leftovers = new Set<string>();
let sweeperInstalled = false;

/** A fresh, empty directory under os.tmpdir() whose name starts with `prefix`. */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix.replace(/[^A-Za-z0-9._-]/g, '-')}-`));
  installSweeper();
  leftovers.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir; missing directories are fine. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  leftovers.delete(dir);
}

function installSweeper(): void {
  if (sweeperInstalled) return;
  sweeperInstalled = true;
  process.on('exit', () => {
    for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
  });
}
