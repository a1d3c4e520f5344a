import { spawn, type ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { findBinary } from './binaries.ts';
import { httpStatus, tcpAccepts } from './probes.ts';

export interface StartProcessOptions {
  command: string;
  args?: string[];
  /** Shown in error messages; defaults to the command's base name. */
  name?: string;
  cwd?: string;
  /** The complete environment of the child (not merged with process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What "ready" means for a started process. */
export type ReadyCheck =
  | { output: RegExp | string | ((output: string) => boolean) }
  | { tcp: { port: number; host?: string } }
  | { http: { url: string; status?: (status: number) => boolean } };

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** stdout and stderr interleaved in arrival order. */
  output(): string;
  stdout(): string;
  stderr(): string;
  running(): boolean;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /** Resolves once `check` holds; rejects with the captured output on timeout or early exit. */
  waitReady(check: ReadyCheck, timeoutMs?: number): Promise<void>;
  /**
   * SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone.
   * Only the process itself is signalled: shell wrappers should `exec` the program.
   */
  stop(graceMs?: number): Promise<ProcessExit>;
}

// Children still running, so they can be killed when the test process exits
// (a failed test run must not leave registries listening).
const liveChildren = new Set<ChildProcess>();
let reaperInstalled = false;

export function startProcess(options: StartProcessOptions): ManagedProcess {
  installReaper();
  const args = options.args ?? [];
  const name = options.name ?? options.command.split('/').pop() ?? options.command;
  // setpriv --pdeathsig: the kernel kills the child even when this process dies
  // by SIGKILL, where no exit handler runs. The child stays in our process
  // group, so killing the group of a test run reaches it too.
  const setpriv = findBinary('setpriv');
  const [file, argv] = setpriv
    ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', options.command, ...args]]
    : [options.command, args];
  const child = spawn(file, argv, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  const all: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  capture(child.stdout, out, all);
  capture(child.stderr, err, all);

  let exit: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    const closed = new Promise((done) => child.once('close', done));
    const finish = async (value: ProcessExit): Promise<void> => {
      liveChildren.delete(child);
      exit ??= value;
      // Wait for the rest of the output, but not for a grandchild that keeps
      // the pipes open after the process itself is gone.
      await Promise.race([closed, sleep(500)]);
      resolve(exit);
    };
    child.once('error', (error) => {
      all.push(`\n[${name}: ${error.message}]\n`);
      void finish({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => void finish({ code, signal }));
  });

  const output = (): string => all.join('');
  const describe = (): string => `${name} (${[options.command, ...args].join(' ')})`;

  return {
    name,
    pid: child.pid,
    output,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    running: () => exit === undefined,
    exited,
    async waitReady(check, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exit !== undefined) {
          await exited; // the last of the output
          throw new Error(
            `${describe()} exited (code ${exit.code}, signal ${exit.signal}) before it was ready ` +
              `(${describeCheck(check)}). Output:\n${tail(output())}`,
          );
        }
        if (await holds(check, output())) return;
        if (Date.now() > deadline) {
          throw new Error(
            `${describe()} was not ready after ${timeoutMs} ms (${describeCheck(check)}). Output:\n${tail(output())}`,
          );
        }
        await Promise.race([sleep(50), exited]);
      }
    },
    async stop(graceMs = 5_000) {
      if (exit !== undefined) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function capture(stream: NodeJS.ReadableStream | null, own: string[], all: string[]): void {
  if (stream === null) return;
  const decoder = new StringDecoder('utf8');
  stream.on('data', (chunk: Buffer) => {
    const text = decoder.write(chunk);
    own.push(text);
    all.push(text);
  });
  stream.on('end', () => {
    const text = decoder.end();
    own.push(text);
    all.push(text);
  });
}

async function holds(check: ReadyCheck, output: string): Promise<boolean> {
  if ('output' in check) {
    const want = check.output;
    if (typeof want === 'string') return output.includes(want);
    if (want instanceof RegExp) return want.test(output);
    return want(output);
  }
  if ('tcp' in check) return tcpAccepts(check.tcp.port, check.tcp.host ?? '127.0.0.1');
  const status = await httpStatus(check.http.url);
  const ok = check.http.status ?? ((s: number) => s >= 200 && s < 300);
  return status !== undefined && ok(status);
}

function describeCheck(check: ReadyCheck): string {
  if ('output' in check) return `waiting for output ${String(check.output)}`;
  if ('tcp' in check) return `waiting for TCP ${check.tcp.host ?? '127.0.0.1'}:${check.tcp.port}`;
  return `waiting for HTTP ${check.http.url}`;
}

/** The end of a long output, which is where the reason for a failure usually is. */
function tail(text: string, max = 20_000): string {
  return text.length <= max ? text : `[... ${text.length - max} chars cut ...]\n${text.slice(-max)}`;
}

function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  const killAll = (): void => {
    for (const child of liveChildren) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Keep the default meaning of the signal when nobody else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
