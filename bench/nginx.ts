// nginx serving one directory with sendfile: the physical limit of serving a cached file on this machine;
// and nginx as a throttled link in front of the upstream.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from '../test/support/binaries.ts';
import { freePort } from '../test/support/ports.ts';
import { startProcess, type ManagedProcess } from '../test/support/process.ts';
import { makeTempDir, removeTempDir } from '../test/support/tmp.ts';
import { childPids } from './machine.ts';

export interface RunningNginx {
  readonly url: string;
  /** 127.0.0.1:PORT, for docker:// references */
  readonly host: string;
  readonly process: ManagedProcess;
  /** The worker processes' pids (for their CPU time). */
  readonly workers: readonly number[];
  stop(): Promise<void>;
}

/**
 * Starts nginx on 127.0.0.1 with `root` as its document root; the config is the smallest that does the
 * job. `sendfile: false` is for comparison only: on some virtual machines read()+write() beats sendfile.
 */
export function startNginx(root: string, options: { sendfile?: boolean } = {}): Promise<RunningNginx> {
  return runNginx((port) => `  sendfile ${options.sendfile === false ? 'off' : 'on'};
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
`);
}

/**
 * nginx as a link of `bytesPerSec` per connection in front of `upstreamUrl` (a WAN, a CDN's
 * per-connection rate): every response reaches the client at most that fast (limit_rate: after each
 * write, the connection waits as long as those bytes take at the rate), in writes of at most 256 KiB
 * (~5 ms of a 50 MB/s link), so the rate is smooth. nginx reads ahead of the client by at most its
 * 1 MiB of buffers (no temp file), as a link's buffers would; with proxy_buffering off, nginx 1.22
 * passed proxied bodies on unthrottled (measured), so buffering stays on.
 */
export function startThrottlingNginx(upstreamUrl: string, bytesPerSec: number): Promise<RunningNginx> {
  const upstream = new URL(upstreamUrl);
  return runNginx((port) => `  upstream origin {
    server ${upstream.host};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering on;
      proxy_max_temp_file_size 0;
      proxy_buffer_size 256k;
      proxy_buffers 4 256k;
      proxy_busy_buffers_size 256k;
      proxy_request_buffering off;
      client_max_body_size 0;
      limit_rate ${Math.round(bytesPerSec)};
    }
  }
`);
}

/** Runs nginx on a free loopback port with the given `http {}` contents (beside the temp paths every config needs). */
async function runNginx(http: (port: number) => string): Promise<RunningNginx> {
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
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
${http(port)}}
`;
  const file = temp('nginx.conf');
  await writeFile(file, conf);
  const child = startProcess({ command: binary, args: ['-p', dir, '-e', temp('error.log'), '-c', file], name: 'nginx', env: { PATH: process.env.PATH } });
  await child.waitReady({ tcp: { port } }, 10_000);
  // The support library kills the master with SIGKILL when the bench dies, which would leave its
  // workers serving: kill them by pid on exit too.
  const workers = child.pid === undefined ? [] : await childPids(child.pid);
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
    host: `127.0.0.1:${port}`,
    process: child,
    workers,
    stop: async () => {
      await child.stop();
      process.off('exit', killWorkers);
      await removeTempDir(dir);
    },
  };
}
