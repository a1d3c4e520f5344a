// Runs `ocimirror serve` as a real child process (for crashes, signals and several replicas), with the
// config written to a YAML file exactly as an operator would.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freePort } from './ports.ts';
import { startProcess, type ManagedProcess, type ProcessExit } from './process.ts';
import { makeTempDir } from './tmp.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/**
 * The installed command (`npm run build` first): bin/ocimirror.js, run through its own shebang, which
 * gives node the same flags the container image's ENTRYPOINT does.
 */
export const INSTALLED_BIN = fileURLToPath(new URL('../../bin/ocimirror.js', import.meta.url));

export interface MirrorProcess {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly process: ManagedProcess;
  /** Parsed JSON log lines printed so far. */
  logs(): Record<string, unknown>[];
  /** SIGKILL: no chance to clean up. */
  kill(): Promise<ProcessExit>;
  /** SIGTERM; resolves with the exit status. */
  terminate(graceMs?: number): Promise<ProcessExit>;
}

/** Starts the mirror on a free port (unless `listen` is given) and waits until /healthz answers. */
export async function startMirrorProcess(config: ConfigInput, options: { env?: NodeJS.ProcessEnv; entry?: string; executable?: string } = {}): Promise<MirrorProcess> {
  const port = await freePort();
  const dir = await makeTempDir('ocimirror-config');
  const file = join(dir, 'config.yaml');
  // No admin API unless a test asks for one: replicas would otherwise all try the default 127.0.0.1:5001.
  await writeFile(file, stringify({ listen: `127.0.0.1:${port}`, admin: false, ...config }));
  const child = startProcess({
    ...(options.executable
      ? { command: options.executable, args: ['serve', '--config', file] }
      : { command: process.execPath, args: [options.entry ?? MAIN, 'serve', '--config', file] }),
    name: 'ocimirror',
    env: { PATH: process.env.PATH, HOME: dir, ...options.env },
  });
  await child.waitReady({ http: { url: `http://127.0.0.1:${port}/healthz`, status: (s) => s === 200 } }, 30_000);
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    process: child,
    logs: () =>
      child
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    kill: async () => {
      if (child.pid !== undefined && child.running()) process.kill(child.pid, 'SIGKILL');
      return child.exited;
    },
    terminate: async (graceMs = 60_000) => {
      if (child.pid !== undefined && child.running()) process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid !== undefined && child.running() && process.kill(child.pid, 'SIGKILL'), graceMs);
      const exit = await child.exited;
      clearTimeout(timer);
      return exit;
    },
  };
}
