// Rootful podman with everything of its own: storage (vfs, no mounts), run dir, containers.conf,
// storage.conf, signature policy, HOME and XDG dirs under a temp dir, so nothing from the host's
// configuration leaks in. The registries.conf is the one the test gives (CONTAINERS_REGISTRIES_CONF).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand, type CommandResult } from './command.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface Podman {
  /** `podman <global flags> <args>`; throws with stderr unless it exits 0. */
  run(args: string[], timeoutMs?: number): Promise<CommandResult>;
  pull(reference: string): Promise<CommandResult>;
  /** `podman import` of a rootfs tarball (e.g. base-rootfs.ts) as `name`, built here, never pulled; returns the image ID. */
  importImage(tarball: string, name: string): Promise<string>;
  /**
   * `podman push image docker://<destination>`: the manifest digest podman wrote (--digestfile) and what
   * it printed (podman retries a failed push 3 times, saying so). TLS follows the registries.conf
   * (`insecure = true`) unless `tlsVerify` is given.
   */
  push(image: string, destination: string, options?: { tlsVerify?: boolean }): Promise<{ digest: string; output: string }>;
  /** Names (repository:tag) of the images in this podman's storage. */
  images(): Promise<string[]>;
  dispose(): Promise<void>;
}

export async function createPodman(registriesConf: string): Promise<Podman> {
  const podman = requireBinary('podman', 'podman');
  const dir = await makeTempDir('podman');
  const path = (name: string) => join(dir, name);
  for (const name of ['root', 'run', 'tmp', 'home', 'xdg-run', 'xdg-config', 'xdg-data']) await mkdir(path(name), { mode: 0o700 });
  await writeFile(path('storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(path('root'))}\nrunroot = ${JSON.stringify(path('run'))}\n`);
  await writeFile(path('containers.conf'), '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n');
  await writeFile(path('policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env = {
    PATH: process.env.PATH,
    HOME: path('home'),
    TMPDIR: path('tmp'),
    XDG_RUNTIME_DIR: path('xdg-run'),
    XDG_CONFIG_HOME: path('xdg-config'),
    XDG_DATA_HOME: path('xdg-data'),
    CONTAINERS_CONF: path('containers.conf'),
    CONTAINERS_STORAGE_CONF: path('storage.conf'),
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    REGISTRY_AUTH_FILE: path('auth.json'),
  };
  await writeFile(env.REGISTRY_AUTH_FILE, JSON.stringify({ auths: {} }));
  const globals = ['--root', path('root'), '--runroot', path('run'), '--storage-driver', 'vfs', '--tmpdir', path('tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
  const run = (args: string[], timeoutMs = 120_000) => runCommand(podman, [...globals, ...args], { env, timeoutMs });
  let pushes = 0;
  return {
    run,
    pull: (reference) => run(['pull', '--signature-policy', path('policy.json'), reference]),
    async importImage(tarball, name) {
      const { stdout } = await run(['import', '--quiet', '--message', 'ocimirror test base', tarball, name]);
      return stdout.trim();
    },
    async push(image, destination, options = {}) {
      const digestFile = path(`push-digest-${++pushes}`);
      const args = ['push', '--signature-policy', path('policy.json'), '--digestfile', digestFile];
      if (options.tlsVerify !== undefined) args.push(`--tls-verify=${options.tlsVerify}`);
      const { stdout, stderr } = await run([...args, image, `docker://${destination}`]);
      return { digest: (await readFile(digestFile, 'utf8')).trim(), output: stdout + stderr };
    },
    async images() {
      const { stdout } = await run(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      return stdout.split('\n').filter(Boolean);
    },
    async dispose() {
      await removeTempDir(dir);
    },
  };
}
