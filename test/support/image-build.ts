// Base images built on this machine, never pulled, for building and running deploy/Dockerfile and
// deploy/compose.yaml on a private engine (docker-engine.ts):
// - a Debian root filesystem made by debootstrap from the Debian mirror this machine's apt uses,
//   cached as a tarball under node_modules/.cache (keyed by mirror, suite, architecture and package
//   list), so only the first run downloads it;
// - a stand-in for the Dockerfile's node base: that rootfs plus the Node 24 binary of the `node`
//   devDependency and this machine's npm;
// - a stand-in for compose's Redis image: the same rootfs, whose redis-server comes from Debian.
// Each is tagged with the name the real file uses, so `docker build -f deploy/Dockerfile .` and
// `docker-compose up` run the files as they are.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';
import type { DockerEngine } from './docker-engine.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'ocimirror-test');
const NODE_BINARY = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
/**
 * This machine's trust store, which node (and so npm) in the stand-in adds to its own CAs: `npm ci`
 * in the build then works wherever it works here, a TLS-inspecting proxy included.
 */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

// redis-server for the Redis stand-in; passwd (useradd) is in minbase already.
const ROOTFS_PACKAGES = ['redis-server'];
// What is left out of the tarball, as in Debian's slim images. Part of the cache key.
const ROOTFS_PRUNE = ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale', 'etc/resolv.conf'];

export interface AptSource {
  /** e.g. http://deb.debian.org/debian */
  readonly uri: string;
  /** e.g. bookworm */
  readonly suite: string;
}

/** The base image deploy/Dockerfile builds from: the default of its `ARG NODE_IMAGE`. */
export function dockerfileBaseImage(): string {
  const text = readFileSync(join(REPO_ROOT, 'deploy', 'Dockerfile'), 'utf8');
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];
  if (!image) throw new Error('deploy/Dockerfile has no `ARG NODE_IMAGE=<image>` line');
  return image;
}

/**
 * Builds the stand-ins for the node and Redis base images in `engine`, tagged `tags.node` and
 * `tags.redis`. The rootfs tarball comes from the cache when it is there.
 */
export async function buildBaseImages(engine: DockerEngine, tags: { node: string; redis: string }): Promise<void> {
  const tarball = await debianRootfs();
  const rootfs = 'ocimirror-test/debian-rootfs:latest';
  await engine.docker(['import', '--message', 'debootstrap, built by test/support/image-build.ts', tarball, rootfs], 300_000);

  const contexts = await makeTempDir('base-image-contexts');
  const node = join(contexts, 'node');
  const redis = join(contexts, 'redis');
  try {
    // What the node stand-in adds to the rootfs, laid out as it lands (one COPY, one layer). npm is
    // pure JavaScript: this machine's copy runs on the Node 24 binary beside it.
    const add = (path: string) => join(node, 'root', path);
    await mkdir(add('usr/local/bin'), { recursive: true });
    await mkdir(add('etc/ssl/certs'), { recursive: true });
    await copyFile(NODE_BINARY, add('usr/local/bin/node'));
    await cp(npmDir(), add('usr/local/lib/node_modules/npm'), { recursive: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', add('usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', add('usr/local/bin/npx'));
    const trustHost = existsSync(HOST_CA_BUNDLE);
    if (trustHost) await copyFile(HOST_CA_BUNDLE, add('etc/ssl/certs/ca-certificates.crt'));
    await writeFile(
      join(node, 'Dockerfile'),
      [`FROM ${rootfs}`, 'COPY root/ /', ...(trustHost ? ['ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'] : []), 'CMD ["node"]', ''].join('\n'),
    );
    // As the official image: the redis user, its data in /data (the volume compose mounts there).
    await mkdir(redis);
    await writeFile(
      join(redis, 'Dockerfile'),
      [`FROM ${rootfs}`, 'RUN mkdir /data && chown redis:redis /data', 'WORKDIR /data', 'USER redis', 'EXPOSE 6379', 'CMD ["redis-server"]', ''].join('\n'),
    );
    await dockerBuild(engine, { context: node, dockerfile: join(node, 'Dockerfile'), tag: tags.node });
    await dockerBuild(engine, { context: redis, dockerfile: join(redis, 'Dockerfile'), tag: tags.redis });
  } finally {
    await removeTempDir(contexts);
  }
}

/**
 * `docker build --network host`: the private engine has no bridge, so build steps share the host's
 * network (which is how `npm ci` reaches the npm registry). Proxy variables are passed on.
 */
export async function dockerBuild(engine: DockerEngine, options: { context: string; dockerfile: string; tag: string }): Promise<string> {
  const proxies = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy']
    .filter((name) => process.env[name])
    .flatMap((name) => ['--build-arg', `${name}=${process.env[name]}`]);
  const { stdout } = await engine.docker(['build', '--network', 'host', ...proxies, '-f', options.dockerfile, '-t', options.tag, options.context], 600_000);
  return stdout;
}

/** The rootfs tarball: from the cache, or made now with debootstrap (about a minute) and cached. */
export async function debianRootfs(): Promise<string> {
  const source = debianAptSource();
  const arch = (await runCommand(requireBinary('dpkg', 'dpkg'), ['--print-architecture'])).stdout.trim();
  const key = createHash('sha256')
    .update(JSON.stringify({ ...source, arch, variant: 'minbase', packages: ROOTFS_PACKAGES, prune: ROOTFS_PRUNE }))
    .digest('hex')
    .slice(0, 16);
  const file = join(CACHE_DIR, `debian-${source.suite}-${arch}-${key}.tar`);
  if (existsSync(file)) return file;

  const debootstrap = requireBinary('debootstrap', 'debootstrap');
  const tar = requireBinary('tar', 'tar');
  const work = await makeTempDir('debootstrap');
  const target = join(work, 'rootfs');
  try {
    await runCommand(
      debootstrap,
      ['--variant=minbase', `--arch=${arch}`, `--include=${ROOTFS_PACKAGES.join(',')}`, source.suite, target, source.uri],
      { timeoutMs: 900_000, env: { PATH: process.env.PATH, DEBIAN_FRONTEND: 'noninteractive' } },
    );
    for (const path of ROOTFS_PRUNE) await rm(join(target, path), { recursive: true, force: true });
    await mkdir(CACHE_DIR, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    // Docker makes /dev, /proc and /sys itself; device nodes in a layer are not wanted.
    await runCommand(tar, ['--numeric-owner', '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*', '-C', target, '-cf', partial, '.'], { timeoutMs: 300_000 });
    for (const old of await readdir(CACHE_DIR)) if (old.startsWith('debian-') && old.endsWith('.tar')) await rm(join(CACHE_DIR, old), { force: true });
    await rename(partial, file);
    return file;
  } finally {
    await unmountUnder(target);
    await removeTempDir(work);
  }
}

/** The Debian mirror and suite of this machine's apt sources (deb822 .sources and one-line .list). */
export function debianAptSource(): AptSource {
  const codename = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  const entries: Array<{ types: string[]; uris: string[]; suites: string[]; components: string[] }> = [];
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((name) => join('/etc/apt/sources.list.d', name))];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const paragraph of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(paragraph)?.[1]?.trim().split(/\s+/) ?? [];
        if (field('Enabled')[0]?.toLowerCase() === 'no') continue;
        entries.push({ types: field('Types'), uris: field('URIs'), suites: field('Suites'), components: field('Components') });
      }
    } else if (file.endsWith('.list') || file === '/etc/apt/sources.list') {
      for (const line of text.split('\n')) {
        const words = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
        if (words.length >= 4) entries.push({ types: [words[0]!], uris: [words[1]!], suites: [words[2]!], components: words.slice(3) });
      }
    }
  }
  const found = entries.find((e) => e.types.includes('deb') && codename && e.suites.includes(codename) && e.components.includes('main'));
  if (!found || !codename) throw new Error(`no "deb ... ${codename ?? '<codename>'} main" entry in /etc/apt/sources.list*: the packaging tests debootstrap a Debian rootfs from this machine's Debian mirror`);
  return { uri: found.uris[0]!.replace(/\/+$/, ''), suite: codename };
}

/** The directory of this machine's npm (`npm` on PATH is .../npm/bin/npm-cli.js behind a link). */
function npmDir(): string {
  const cli = realpathSync(requireBinary('npm', 'npm'));
  const dir = dirname(dirname(cli));
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`cannot find npm's package directory from ${cli}`);
  return dir;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** debootstrap mounts /proc and /sys in the target; a failed run may leave them, and rm must not walk them. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .reverse();
  for (const point of mounts) await runCommand(requireBinary('umount', 'mount'), ['--lazy', point]).catch(() => undefined);
}
