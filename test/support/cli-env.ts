// `ocimirror` as its own process with an environment of the test's choosing (OCIMIRROR_* variables),
// optionally as another user (setpriv), e.g. one that may not write the data dir.
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { REPO_ROOT, type CliResult } from './cli.ts';
import { startProcess } from './process.ts';

const MAIN = join(REPO_ROOT, 'src/cli/main.ts');
/** Node 24 (type stripping) even when the test runner was started by an older node. */
export const NODE = Number(process.versions.node.split('.')[0]) >= 24 ? process.execPath : join(REPO_ROOT, 'node_modules/.bin/node');

export interface CliEnvOptions {
  /** Added to PATH; nothing else of this process's environment is passed. */
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this uid and gid (root only), no supplementary groups. */
  readonly uid?: number;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/** Resolves with the exit, never rejects. */
export async function runOcimirrorWith(args: string[], options: CliEnvOptions = {}): Promise<CliResult> {
  const command = options.uid === undefined ? NODE : requireBinary('setpriv', 'util-linux');
  const prefix = options.uid === undefined ? [] : [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', NODE];
  const child = startProcess({
    command,
    args: [...prefix, MAIN, ...args],
    name: `ocimirror ${args[0] ?? ''}`,
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH, ...options.env },
  });
  const timer = setTimeout(() => void child.stop(2_000), options.timeoutMs ?? 120_000);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
}
