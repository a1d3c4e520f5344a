// A real containerd daemon of the test's own: root, state and socket under a temp dir, no CRI plugin,
// the native snapshotter (works on any filesystem, needs no mounts). `ctr` talks to it and resolves
// registries with the hosts.toml directory it is given, as a node configured with config_path would.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand, type CommandResult } from './command.ts';
import { startProcess, type ManagedProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface CtrPullOptions {
  /** The certs.d-style directory of <host>/hosts.toml files (`ctr --hosts-dir`). */
  hostsDir: string;
  /** e.g. linux/amd64; default: containerd's own platform. */
  platform?: string;
  allPlatforms?: boolean;
  timeoutMs?: number;
}

export interface RunningContainerd {
  /** The gRPC socket. */
  readonly address: string;
  readonly root: string;
  /** Runs `ctr --address <socket> <args>` (namespace "default", native snapshotter); throws unless it exits 0. */
  ctr(args: string[], timeoutMs?: number): Promise<CommandResult>;
  /** `ctr images pull --hosts-dir ...`: fetches through the hosts.toml setup and unpacks. */
  pull(reference: string, options: CtrPullOptions): Promise<CommandResult>;
  /** Image names containerd holds. */
  images(): Promise<string[]>;
  /** Digests in containerd's content store. */
  content(): Promise<string[]>;
  /** The text of `path` inside any committed native snapshot that has it (the unpacked layers). */
  readUnpacked(path: string): Promise<string | undefined>;
  /** Everything containerd printed. */
  output(): string;
  /** Stops containerd and deletes its directories. */
  dispose(): Promise<void>;
}

const SNAPSHOTTER = 'native';

export async function startContainerd(): Promise<RunningContainerd> {
  const containerd = requireBinary('containerd', 'containerd');
  const ctrBinary = requireBinary('ctr', 'containerd');
  const dir = await makeTempDir('containerd');
  const address = join(dir, 'containerd.sock');
  const root = join(dir, 'root');
  const configPath = join(dir, 'config.toml');
  await writeFile(configPath, configToml(dir, address, root));
  // containerd needs root: it owns snapshots, mounts and shims. A non-root run fails here with its reason.
  const daemon: ManagedProcess = startProcess({ command: containerd, args: ['--config', configPath], name: 'containerd', env: { PATH: process.env.PATH } });
  try {
    await daemon.waitReady({ output: 'containerd successfully booted' }, 30_000);
  } catch (err) {
    await daemon.stop();
    await removeTempDir(dir);
    throw err;
  }

  const ctr = (args: string[], timeoutMs = 120_000) =>
    runCommand(ctrBinary, ['--address', address, '--namespace', 'default', ...args], {
      timeoutMs,
      // Nothing from the host: no proxy variables, no CONTAINERD_* defaults.
      env: { PATH: process.env.PATH, HOME: dir, CONTAINERD_SNAPSHOTTER: SNAPSHOTTER },
    });

  return {
    address,
    root,
    ctr,
    pull: (reference, options) => {
      const args = ['images', 'pull', '--hosts-dir', options.hostsDir, '--snapshotter', SNAPSHOTTER];
      if (options.allPlatforms) args.push('--all-platforms');
      if (options.platform) args.push('--platform', options.platform);
      return ctr([...args, reference], options.timeoutMs);
    },
    images: async () => (await ctr(['images', 'ls', '-q'])).stdout.split('\n').filter(Boolean),
    content: async () => (await ctr(['content', 'ls', '-q'])).stdout.split('\n').filter(Boolean),
    async readUnpacked(path) {
      const snapshots = join(root, `io.containerd.snapshotter.v1.${SNAPSHOTTER}`, 'snapshots');
      for (const id of await readdir(snapshots).catch(() => [] as string[])) {
        const text = await readFile(join(snapshots, id, path), 'utf8').catch(() => undefined);
        if (text !== undefined) return text;
      }
      return undefined;
    },
    output: () => daemon.output(),
    async dispose() {
      await daemon.stop();
      await removeTempDir(dir);
    },
  };
}

/** Only what pulling needs; every path under the test's directory. */
function configToml(dir: string, address: string, root: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(root)}
state = ${q(join(dir, 'state'))}
# No Kubernetes CRI here; the other snapshotters need kernel features or would only log errors.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(address)}

[ttrpc]
  address = ${q(`${address}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}
`;
}
