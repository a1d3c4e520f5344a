// Facts about the machine and the programs measured, for the report; and memory readings from /proc.
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { findBinary } from '../test/support/binaries.ts';
import { runCommand } from '../test/support/command.ts';

export interface MachineFacts {
  readonly nproc: number;
  readonly cpu: string;
  readonly memory: string;
  readonly kernel: string;
  readonly node: string;
  readonly versions: Record<string, string>;
}

export async function machineFacts(): Promise<MachineFacts> {
  const version = async (name: string, args: string[]): Promise<string> => {
    const binary = findBinary(name);
    if (!binary) return 'not installed';
    try {
      const { stdout, stderr } = await runCommand(binary, args, { env: { PATH: process.env.PATH }, timeoutMs: 10_000 });
      return (stdout || stderr).trim().split('\n')[0] ?? '?';
    } catch (err) {
      // nginx -v prints to stderr and exits 0, wrk -v exits 1 after printing its version.
      return /\n(.+)/.exec(String(err))?.[1]?.trim() ?? '?';
    }
  };
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? '?',
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    versions: {
      'docker-registry': await version('docker-registry', ['--version']),
      nginx: await version('nginx', ['-v']),
      curl: await version('curl', ['--version']),
      wrk: await version('wrk', ['-v']),
      skopeo: await version('skopeo', ['--version']),
    },
  };
}

/** Peak and current resident set size of a process, in bytes (VmHWM, VmRSS). */
export async function memoryOf(pid: number): Promise<{ peak: number; current: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { peak: kb('VmHWM'), current: kb('VmRSS') };
}

/**
 * CPU time (user + system) in seconds from /proc/<pid>/stat: the process's own, or, with `reapedChildren`,
 * that of its children that exited and were waited for (this process's skopeo runs, say).
 */
export async function cpuSecondsOf(pid: number | 'self', options: { reapedChildren?: boolean } = {}): Promise<number> {
  // utime, stime, cutime, cstime are fields 14-17, in clock ticks (USER_HZ: 100 on Linux whatever the
  // kernel's HZ, `getconf CLK_TCK`).
  const fields = await statFields(pid);
  const [user, system] = options.reapedChildren ? [fields[13], fields[14]] : [fields[11], fields[12]];
  return (Number(user) + Number(system)) / CLOCK_TICKS_PER_SECOND;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** Pids whose parent is `pid` (nginx's workers, once it answers). */
export async function childPids(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = Number((await statFields(Number(entry)).catch(() => []))[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/**
 * /proc/<pid>/stat from field 3 (state) on: "pid (comm) state ppid ...", where comm may hold spaces
 * and parentheses, so the fields are read after the last ')'. Index 0 is field 3.
 */
async function statFields(pid: number | 'self'): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Samples a process's VmRSS every `everyMs` until stop(), which resolves with the largest sample (bytes). */
export function sampleRss(pid: number, everyMs = 200): { stop(): Promise<number> } {
  let max = 0;
  const sample = async () => {
    const { current } = await memoryOf(pid).catch(() => ({ current: 0 }));
    if (current > max) max = current;
  };
  const timer = setInterval(() => void sample(), everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      return max;
    },
  };
}
