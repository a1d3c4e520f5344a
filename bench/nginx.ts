// nginx serving one directory with sendfile: the physical limit of serving a cached file on this machine.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from '../test/support/binaries.ts';
import { freePort } from '../test/support/ports.ts';
import { startProcess, type ManagedProcess } from '../test/support/process.ts';
import { makeTempDir, removeTempDir } from '../test/support/tmp.ts';

export interface RunningNginx {
  readonly url: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts nginx on 127.0.0.1 with `root` as its document root; the config is the smallest that does the
 * job. `sendfile: false` is for comparison only: on some virtual machines read()+write() beats sendfile.
 */
export async function startNginx(root: string, options: { sendfile?: boolean } = {}): Promise<RunningNginx> {
  const binary = requireBinary('nginx', 'nginx');
  const dir = await makeTempDir('bench-nginx');
  const port = await freePort();
  const temp = (name: string) => join(dir, name);
  // As root, workers would switch to "nobody", who cannot read the 0700 temp dirs holding the blobs.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const conf = `${user}worker_processes auto;
daemon off;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile ${options.sendfile === false ? 'off' : 'on'};
  default_type application/octet-stream;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
  const file = temp('nginx.conf');
  await writeFile(file, conf);
  const child = startProcess({ command: binary, args: ['-p', dir, '-e', temp('error.log'), '-c', file], name: 'nginx', env: { PATH: process.env.PATH } });
  await child.waitReady({ tcp: { port } }, 10_000);
  // The support library kills the master with SIGKILL when the bench dies, which would leave its
  // workers serving: kill them by pid on exit too.
  const workers = child.pid === undefined ? [] : await childrenOf(child.pid);
  const killWorkers = () => {
    for (const pid of workers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killWorkers);
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    stop: async () => {
      await child.stop();
      process.off('exit', killWorkers);
      await removeTempDir(dir);
    },
  };
}

/** Pids whose parent is `pid` (nginx's workers, once it answers). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}
