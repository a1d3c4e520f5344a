// A private Docker engine (Debian's dockerd 20.10, root) for push/pull tests: vfs storage (no mounts),
// no iptables, no bridge, no IP forwarding, and every directory and socket under a temp dir. dockerd
// starts its own containerd, whose sockets live under its --exec-root (no clash with containerd.ts).
//
// dockerd runs as PID 1 of its own PID and mount namespaces (`unshare`):
// - the kernel kills its containerd with it, even when the test process dies by SIGKILL (containerd
//   would otherwise outlive a killed dockerd);
// - /run and /opt are empty tmpfs and /etc/docker is an empty dir of the test's: nothing of the host's
//   Docker setup is read (certs.d, key.json), dockerd cannot adopt a system containerd at
//   /run/containerd/containerd.sock, and what it writes there (key.json, /run/docker, /opt/containerd)
//   goes away with it.
// The network namespace is the host's, so 127.0.0.1:PORT registries are reachable; 127.0.0.0/8 is an
// insecure (plain HTTP) registry range by default. No registry mirrors are configured.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBaseRootfs } from './base-rootfs.ts';
import { requireBinary } from './binaries.ts';
import { runCommand, type CommandResult } from './command.ts';
import { startProcess, type ManagedProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface DockerEngine {
  /** unix:///.../docker.sock */
  readonly host: string;
  /** `docker -H <host> <args>` with its own DOCKER_CONFIG; throws with stderr unless it exits 0. */
  docker(args: string[], timeoutMs?: number): Promise<CommandResult>;
  /** Imports the locally built busybox base image (base-rootfs.ts) as `name`; returns its image ID. */
  importBaseImage(name: string): Promise<string>;
  /** Everything dockerd (and its containerd) printed. */
  output(): string;
  /** Stops dockerd and its containerd, deletes every directory. */
  dispose(): Promise<void>;
}

// sun_path holds 108 bytes; the longest socket is <exec-root>/containerd/containerd.sock.ttrpc.
const MAX_SOCKET_PATH = 100;

// Runs as PID 1 of the new namespaces, then becomes dockerd. $1 is the dir to show as /etc/docker.
const NAMESPACE_SETUP = [
  'set -e',
  'mount -t tmpfs -o mode=0755 ocimirror-test /run',
  'mount -t tmpfs -o mode=0755 ocimirror-test /opt',
  'mount --bind "$1" /etc/docker',
  'shift',
  'exec "$@"',
].join('\n');

export async function startDockerEngine(): Promise<DockerEngine> {
  const dockerd = requireBinary('dockerd', 'docker.io');
  // The client of the same package (.../sbin/dockerd -> .../bin/docker), not another docker earlier on PATH.
  const cli = requireBinary(join(dirname(dirname(dockerd)), 'bin', 'docker'), 'docker.io');
  const unshare = requireBinary('unshare', 'util-linux');
  requireBinary('mount', 'mount');
  requireBinary('containerd', 'containerd');
  requireBinary('runc', 'runc');

  const dir = await makeTempDir('dockerd');
  const path = (name: string) => join(dir, name);
  const execRoot = path('x');
  const socket = path('docker.sock');
  const longest = join(execRoot, 'containerd', 'containerd.sock.ttrpc');
  if (longest.length >= MAX_SOCKET_PATH) {
    await removeTempDir(dir);
    throw new Error(`dockerd socket path ${longest} is ${longest.length} chars (limit ${MAX_SOCKET_PATH}); use a shorter TMPDIR`);
  }
  for (const name of ['data', 'x', 'etc-docker', 'cli', 'home']) await mkdir(path(name), { mode: 0o700 });
  // Empty on purpose: no registry-mirrors, no insecure-registries beyond the built-in 127.0.0.0/8.
  await writeFile(path('daemon.json'), '{}\n');
  await writeFile(path('cli/config.json'), JSON.stringify({ auths: {} }));

  const dockerdArgs = [
    '--storage-driver', 'vfs',
    '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none',
    '--data-root', path('data'),
    '--exec-root', execRoot,
    '--pidfile', path('docker.pid'),
    '--config-file', path('daemon.json'),
    '-H', `unix://${socket}`,
  ];
  // unshare forks dockerd and waits for it; --kill-child: if unshare dies (the test process died and
  // setpriv's pdeathsig killed it), dockerd is killed, and with PID 1 gone the whole namespace.
  const daemon: ManagedProcess = startProcess({
    command: unshare,
    args: [
      '--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc', '--propagation', 'private', '--',
      'sh', '-c', NAMESPACE_SETUP, 'dockerd-setup', path('etc-docker'), dockerd, ...dockerdArgs,
    ],
    name: 'dockerd',
    // Only PATH: no DOCKER_* or proxy variables from the host.
    env: { PATH: process.env.PATH },
  });
  const stop = async (): Promise<void> => {
    if (!daemon.running()) return;
    // unshare ignores SIGTERM; dockerd (its only child) gets it, shuts down containerd and exits.
    const child = daemon.pid === undefined ? undefined : childOf(daemon.pid);
    if (child !== undefined) process.kill(child, 'SIGTERM');
    await Promise.race([daemon.exited, sleep(15_000)]);
    await daemon.stop(1_000); // still there: SIGKILL takes the namespace down
  };
  try {
    await daemon.waitReady({ output: `API listen on ${socket}` }, 60_000);
  } catch (error) {
    await stop();
    await removeTempDir(dir);
    throw error;
  }

  const docker = (args: string[], timeoutMs = 120_000) =>
    runCommand(cli, ['-H', `unix://${socket}`, ...args], {
      timeoutMs,
      env: { PATH: process.env.PATH, HOME: path('home'), DOCKER_CONFIG: path('cli') },
    });

  return {
    host: `unix://${socket}`,
    docker,
    async importBaseImage(name) {
      const { stdout } = await docker(['import', '--message', 'ocimirror test base', await writeBaseRootfs(dir), name]);
      return stdout.trim();
    },
    output: () => daemon.output(),
    async dispose() {
      await stop();
      await removeTempDir(dir);
    },
  };
}

/** The (host) pid of the only child of `pid`, or undefined when it has none. */
function childOf(pid: number): number | undefined {
  try {
    const [first] = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    return first ? Number(first) : undefined;
  } catch {
    return undefined; // already gone
  }
}
