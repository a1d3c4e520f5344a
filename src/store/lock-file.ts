// A lock between processes that may share a directory (replicas on one data dir, also on several
// hosts): a file created exclusively, naming its holder, its mtime refreshed while held. A lock whose
// holder died (on this host and gone, or not refreshed for a while) is taken over.
import { readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/** A holder refreshes its lock's mtime this often... */
const LOCK_HEARTBEAT_MS = 5_000;
/** ...so a lock untouched this long was left by a process that died (on any host). */
const LOCK_STALE_MS = 30_000;

export async function acquireLock(path: string): Promise<{ release(): Promise<void> } | undefined> {
  const owner = JSON.stringify({ host: hostname(), pid: process.pid });
  for (let attempt = 0; attempt < 2; attempt++) {
    const created = await writeFile(path, owner, { flag: 'wx' }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    );
    if (created) {
      const heartbeat = setInterval(() => {
        const now = new Date();
        void utimes(path, now, now).catch(() => {});
      }, LOCK_HEARTBEAT_MS);
      heartbeat.unref();
      return {
        release: async () => {
          clearInterval(heartbeat);
          await rm(path, { force: true });
        },
      };
    }
    if (!(await isStale(path))) return undefined;
    await rm(path, { force: true });
  }
  return undefined;
}

/** Left by a process that died: on this host and no longer running, or not refreshed for a while. */
export async function isStale(path: string): Promise<boolean> {
  const [info, text] = await Promise.all([stat(path).catch(() => undefined), readFile(path, 'utf8').catch(() => undefined)]);
  if (!info) return true;
  if (Date.now() - info.mtimeMs > LOCK_STALE_MS) return true;
  try {
    const { host, pid } = JSON.parse(text ?? '') as { host?: string; pid?: number };
    return host === hostname() && typeof pid === 'number' && !isRunning(pid);
  } catch {
    return false; // being written right now
  }
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
