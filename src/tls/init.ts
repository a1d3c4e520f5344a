// `ocimirror tls init` without the printing: which names the server certificate carries, and the
// four files under the data dir. An existing CA is reused, so re-running after adding an upstream
// re-issues the server certificate without making every node trust a new CA.
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import type { Config, UpstreamConfig } from '../config/config.ts';
import { createCertificateAuthority, issueServerCertificate, loadCertificateAuthority, type CertificateAuthority } from './certificates.ts';

export interface TlsPaths {
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

export const CA_VALID_DAYS = 3650;
export const SERVER_VALID_DAYS = 825;

/** The CA lives in <dataDir>/tls; the server pair where `tls.certFile`/`keyFile` say (default the same dir). */
export function tlsPaths(config: Pick<Config, 'dataDir' | 'tls'>): TlsPaths {
  return {
    caCert: join(config.dataDir, 'tls', 'ca.crt'),
    caKey: join(config.dataDir, 'tls', 'ca.key'),
    serverCert: config.tls.certFile,
    serverKey: config.tls.keyFile,
  };
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/**
 * Every name a node may reach the mirror by: the mirror's own names and addresses first (the first
 * becomes the common name), then every alias of every upstream (the spoofed names; ports dropped,
 * IP aliases as IP entries), then localhost and the loopback addresses.
 */
export function certificateNames(upstreams: readonly Pick<UpstreamConfig, 'aliases'>[], extra: { names?: readonly string[]; ips?: readonly string[] } = {}): string[] {
  const names: string[] = [];
  for (const name of extra.names ?? []) {
    const lower = name.trim().toLowerCase();
    if (!DNS_NAME.test(lower)) throw new Error(`--name "${name}" is not a DNS name`);
    names.push(lower);
  }
  for (const ip of extra.ips ?? []) {
    if (!isIP(ip.trim())) throw new Error(`--ip "${ip}" is not an IP address`);
    names.push(ip.trim());
  }
  for (const u of upstreams) for (const alias of u.aliases) names.push(hostWithoutPort(alias));
  names.push('localhost', '127.0.0.1', '::1');
  return [...new Set(names)];
}

/** "registry:5000" -> "registry", "[::1]:5000" -> "::1". */
export function hostWithoutPort(hostPort: string): string {
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(hostPort);
  if (bracketed) return bracketed[1]!;
  return hostPort.replace(/:\d+$/, '');
}

export interface TlsInitOptions {
  readonly paths: TlsPaths;
  readonly names: readonly string[];
  /** Replace an existing CA (every node must then trust the new one). */
  readonly newCa?: boolean;
  readonly serverValidDays?: number;
  readonly now?: Date;
}

export interface TlsInitResult {
  readonly caCreated: boolean;
  readonly caSubject: string;
  readonly names: readonly string[];
  readonly notAfter: Date;
}

export async function initTls(options: TlsInitOptions): Promise<TlsInitResult> {
  const { paths } = options;
  const now = options.now ?? new Date();
  let ca = options.newCa ? undefined : await readCa(paths);
  const caCreated = ca === undefined;
  if (!ca) {
    ca = createCertificateAuthority({ commonName: `ocimirror CA ${now.toISOString().slice(0, 10)} ${randomBytes(3).toString('hex')}`, validDays: CA_VALID_DAYS, now });
    await writeSecret(paths.caKey, ca.key);
    await writePublic(paths.caCert, ca.cert);
  }
  const server = issueServerCertificate(ca, { names: options.names, validDays: options.serverValidDays ?? SERVER_VALID_DAYS, now });
  await writeSecret(paths.serverKey, server.key);
  await writePublic(paths.serverCert, server.cert);
  return { caCreated, caSubject: ca.x509.subject.replace(/\n/g, ', '), names: options.names, notAfter: new Date(new X509Certificate(server.cert).validTo) };
}

async function readCa(paths: TlsPaths): Promise<CertificateAuthority | undefined> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(paths.caCert, 'utf8'), readFile(paths.caKey, 'utf8')]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return loadCertificateAuthority(cert, key);
  } catch (err) {
    throw new Error(`the CA in ${paths.caCert} cannot be used (${(err as Error).message}); pass --new-ca to replace it`, { cause: err });
  }
}

/** Private keys: mode 0600 from the first byte on, replaced atomically. */
async function writeSecret(path: string, content: string): Promise<void> {
  await writeAtomically(path, content, 0o600);
}

async function writePublic(path: string, content: string): Promise<void> {
  await writeAtomically(path, content, 0o644);
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode); // the umask may have taken bits away from a public file
  await rename(temp, path);
}
