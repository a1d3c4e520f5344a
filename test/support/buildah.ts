// Rootful buildah with everything of its own, like podman.ts: vfs storage (no mounts) under --root and
// --runroot, containers.conf, storage.conf, an empty registries.conf, an empty auth file, an
// accept-anything signature policy, HOME and TMPDIR under a temp dir. Images are built here from
// scratch (`from scratch`, `copy`, `commit`), never pulled, and pushed to 127.0.0.1 registries over
// plain HTTP (--tls-verify=false).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand, type CommandResult } from './command.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface BuildahBuildOptions {
  /** Files by path inside the image (no leading slash), with their text content. */
  files: Record<string, string>;
  /** Manifest format of the committed image; buildah's default is oci. */
  format?: 'oci' | 'docker';
}

export interface BuildahPushResult {
  /** The manifest digest buildah wrote with --digestfile. */
  digest: string;
  /** What buildah printed. */
  output: string;
}

export interface Buildah {
  /** `buildah <global flags> <args>`; throws with stderr unless it exits 0. */
  run(args: string[], timeoutMs?: number): Promise<CommandResult>;
  /** Builds `name` (e.g. localhost/tools:1) from scratch with `files` in it; returns the image ID. */
  buildFromScratch(name: string, options: BuildahBuildOptions): Promise<string>;
  /** `buildah push --tls-verify=false --digestfile ... image docker://<destination>`. */
  push(image: string, destination: string): Promise<BuildahPushResult>;
  dispose(): Promise<void>;
}

export async function createBuildah(): Promise<Buildah> {
  const buildah = requireBinary('buildah', 'buildah');
  const dir = await makeTempDir('buildah');
  const path = (name: string) => join(dir, name);
  for (const name of ['root', 'run', 'tmp', 'home', 'context']) await mkdir(path(name), { mode: 0o700 });
  await writeFile(path('storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(path('root'))}\nrunroot = ${JSON.stringify(path('run'))}\n`);
  await writeFile(path('containers.conf'), '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n');
  await writeFile(path('registries.conf'), '');
  await writeFile(path('policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env = {
    PATH: process.env.PATH,
    HOME: path('home'),
    TMPDIR: path('tmp'),
    // `buildah run` is never used; chroot keeps anything that would start a runtime away from runc.
    BUILDAH_ISOLATION: 'chroot',
    CONTAINERS_CONF: path('containers.conf'),
    CONTAINERS_STORAGE_CONF: path('storage.conf'),
    CONTAINERS_REGISTRIES_CONF: path('registries.conf'),
    REGISTRY_AUTH_FILE: path('auth.json'),
  };
  await writeFile(env.REGISTRY_AUTH_FILE, JSON.stringify({ auths: {} }));
  const globals = ['--root', path('root'), '--runroot', path('run'), '--storage-driver', 'vfs'];
  const policy = ['--signature-policy', path('policy.json')];
  const run = (args: string[], timeoutMs = 120_000) => runCommand(buildah, [...globals, ...args], { env, timeoutMs });
  let builds = 0;

  return {
    run,
    async buildFromScratch(name, options) {
      const context = path(`context/${++builds}`);
      for (const [file, text] of Object.entries(options.files)) {
        await mkdir(dirname(join(context, file)), { recursive: true });
        await writeFile(join(context, file), text);
      }
      const container = (await run(['from', ...policy, '--quiet', 'scratch'])).stdout.trim();
      try {
        await run(['copy', '--quiet', container, `${context}/`, '/']);
        await run(['config', '--created-by', 'ocimirror test (buildah from scratch)', container]);
        const format = options.format ?? 'oci';
        const { stdout } = await run(['commit', ...policy, '--quiet', '--format', format, '--timestamp', '0', container, name]);
        return stdout.trim();
      } finally {
        await run(['rm', container]);
      }
    },
    async push(image, destination) {
      const digestFile = path(`digest-${++builds}`);
      // --retry 0: a request the registry fails must fail the test, not be hidden by a retry.
      const { stdout, stderr } = await run(['push', ...policy, '--tls-verify=false', '--retry', '0', '--digestfile', digestFile, image, `docker://${destination}`]);
      return { digest: (await readFile(digestFile, 'utf8')).trim(), output: stdout + stderr };
    },
    async dispose() {
      await removeTempDir(dir);
    },
  };
}
