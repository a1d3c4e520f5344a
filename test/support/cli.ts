// Runs the `ocimirror` command as its own process, as an operator would.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from './process.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO_ROOT, 'src/cli/main.ts');
/** Node 24 (type stripping) even when the test runner was started by an older node. */
const NODE = Number(process.versions.node.split('.')[0]) >= 24 ? process.execPath : join(REPO_ROOT, 'node_modules/.bin/node');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `ocimirror <args>` with no OCIMIRROR_* variables from this process; resolves with its exit, never rejects. */
export async function runOcimirror(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const child = startProcess({ command: NODE, args: [MAIN, ...args], name: `ocimirror ${args[0] ?? ''}`, cwd: REPO_ROOT, env: { PATH: process.env.PATH, ...options.env } });
  const timer = setTimeout(() => void child.stop(2_000), options.timeoutMs ?? 120_000);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Like runOcimirror, but throws with stderr unless the command exits 0. */
export async function ocimirrorOk(args: string[], options: { timeoutMs?: number } = {}): Promise<CliResult> {
  const result = await runOcimirror(args, options);
  if (result.code !== 0) throw new Error(`\`ocimirror ${args.join(' ')}\` exited ${result.code}:\n${result.stderr}${result.stdout}`);
  return result;
}
