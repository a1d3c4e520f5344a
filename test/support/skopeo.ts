import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand, type CommandResult } from './command.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface SkopeoCopyOptions {
  /** Copy every image of an index (`--all`). */
  all?: boolean;
  /** Destination manifest format; default keeps the source's. */
  format?: 'oci' | 'v2s2';
  /** `user:password` for the source / destination registry. */
  srcCreds?: string;
  destCreds?: string;
  /** Default false: test registries speak plain HTTP on loopback. */
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  /** Fail rather than change any digest (e.g. by compressing uncompressed layers). */
  preserveDigests?: boolean;
  /** Default 120 s. */
  timeoutMs?: number;
}

export interface SkopeoInspectOptions {
  /** Print the manifest bytes as stored (`--raw`). */
  raw?: boolean;
  /** Inspect the image config instead of the manifest (`--config`). */
  config?: boolean;
  /** Default false. */
  tlsVerify?: boolean;
  /** `user:password`. */
  creds?: string;
  /** A directory of CA certificates (*.crt) to trust (`--cert-dir`), e.g. the mirror's own CA. */
  certDir?: string;
  timeoutMs?: number;
}

/** The parts of `skopeo inspect` (without --raw) that tests use. */
export interface SkopeoInspectInfo {
  Name?: string;
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
  LayersData?: Array<{ MIMEType: string; Digest: string; Size: number }>;
  [key: string]: unknown;
}

/** `skopeo copy src dest`; throws with skopeo's stderr when it fails. */
export async function skopeoCopy(src: string, dest: string, options: SkopeoCopyOptions = {}): Promise<CommandResult> {
  const args = [
    'copy',
    `--src-tls-verify=${options.srcTlsVerify ?? false}`,
    `--dest-tls-verify=${options.destTlsVerify ?? false}`,
  ];
  if (options.all) args.push('--all');
  if (options.format) args.push('--format', options.format);
  if (options.srcCreds !== undefined) args.push('--src-creds', options.srcCreds);
  if (options.destCreds !== undefined) args.push('--dest-creds', options.destCreds);
  if (options.preserveDigests) args.push('--preserve-digests');
  args.push(src, dest);
  return runSkopeo(args, options.timeoutMs);
}

/**
 * Copies a built image or index (see images.ts) to `registry` as
 * `repository:tag`. Unless a `format` conversion is asked for, digests are
 * preserved (skopeo would otherwise gzip uncompressed layers on the way,
 * changing the manifest digest).
 */
export function pushImage(
  image: { ociRef: string },
  registry: { host: string },
  reference: string,
  options: SkopeoCopyOptions = {},
): Promise<CommandResult> {
  return skopeoCopy(image.ociRef, `docker://${registry.host}/${reference}`, {
    preserveDigests: options.format === undefined,
    ...options,
  });
}

export function skopeoInspect(ref: string, options: SkopeoInspectOptions & { raw: true }): Promise<string>;
export function skopeoInspect(ref: string, options?: SkopeoInspectOptions): Promise<SkopeoInspectInfo>;
export async function skopeoInspect(ref: string, options: SkopeoInspectOptions = {}): Promise<string | SkopeoInspectInfo> {
  // --no-tags: otherwise skopeo also lists the repository's tags, an extra request.
  const args = ['inspect', '--no-tags', `--tls-verify=${options.tlsVerify ?? false}`];
  if (options.raw) args.push('--raw');
  if (options.config) args.push('--config');
  if (options.creds !== undefined) args.push('--creds', options.creds);
  if (options.certDir !== undefined) args.push('--cert-dir', options.certDir);
  args.push(ref);
  const { stdout } = await runSkopeo(args, options.timeoutMs);
  return options.raw ? stdout : (JSON.parse(stdout) as SkopeoInspectInfo);
}

/** sha256 of the manifest (or index) bytes that `ref` resolves to, without platform selection. */
export async function manifestDigestOf(ref: string, options: Omit<SkopeoInspectOptions, 'raw' | 'config'> = {}): Promise<string> {
  const raw = await skopeoInspect(ref, { ...options, raw: true });
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

/**
 * Runs skopeo with nothing from the host leaking in: an empty auth file,
 * an accept-anything policy, empty registries.conf and registries.d.
 */
async function runSkopeo(args: string[], timeoutMs?: number): Promise<CommandResult> {
  const skopeo = requireBinary('skopeo', 'skopeo');
  const home = await makeTempDir('skopeo-home');
  try {
    const authFile = join(home, 'auth.json');
    const policy = join(home, 'policy.json');
    const registriesConf = join(home, 'registries.conf');
    const registriesD = join(home, 'registries.d');
    await writeFile(authFile, JSON.stringify({ auths: {} }));
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(registriesConf, '');
    await mkdir(registriesD);
    const [command, ...rest] = args;
    const commandArgs = [command ?? '', '--authfile', authFile, ...rest];
    return await runCommand(
      skopeo,
      ['--policy', policy, '--registries.d', registriesD, '--tmpdir', home, ...commandArgs],
      {
        timeoutMs,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          TMPDIR: home,
          DOCKER_CONFIG: home,
          REGISTRY_AUTH_FILE: authFile,
          CONTAINERS_REGISTRIES_CONF: registriesConf,
        },
      },
    );
  } finally {
    await removeTempDir(home);
  }
}
