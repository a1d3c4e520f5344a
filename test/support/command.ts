import { startProcess } from './process.ts';

export interface RunCommandOptions {
  cwd?: string;
  /** The complete environment of the child (not merged with process.env). */
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGTERM, then SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a short-lived program to completion; throws with its stderr unless it exits 0. */
export async function runCommand(
  command: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const child = startProcess({ command, args, cwd: options.cwd, env: options.env });
  const timeoutMs = options.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void child.stop(2_000);
  }, timeoutMs);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  const result = { stdout: child.stdout(), stderr: child.stderr() };
  if (exit.code === 0 && !timedOut) return result;
  const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited with code ${exit.code}, signal ${exit.signal}`;
  throw new Error(`\`${[command, ...args].join(' ')}\` ${why}:\n${result.stderr || result.stdout}`);
}
