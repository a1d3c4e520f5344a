// What every client-config generator takes and gives: the mirror table, the mirror as the nodes reach
// it, and files to install on the nodes plus notes for the person installing them.
import type { UpstreamConfig } from '../config/config.ts';

export type MirrorTable = readonly (Pick<UpstreamConfig, 'name' | 'url' | 'aliases' | 'isDefault'> & Partial<Pick<UpstreamConfig, 'insecure'>>)[];

/**
 * Where a client goes when the mirror fails: the upstream the mirror table names (a lab's private
 * registry stays the only source), the registry the image reference names (the public one), or
 * nowhere (the mirror is the only source; nothing ever reaches past it).
 */
export const FALLBACKS = ['upstream', 'registry', 'none'] as const;
export type Fallback = (typeof FALLBACKS)[number];

export interface ClientOptions {
  /** The mirror as nodes reach it: http(s)://host[:port], no path (see parseEndpoint). */
  readonly endpoint: URL;
  /** Nodes skip TLS verification of the mirror (https endpoint with a certificate they cannot check). */
  readonly skipVerify?: boolean;
  /** Path, on the nodes, of the CA certificate that signed the mirror's certificate. */
  readonly caFile?: string;
  /** Default `upstream`. */
  readonly fallback?: Fallback;
}

export interface GeneratedFile {
  /** Relative to the directory the client reads (e.g. docker.io/hosts.toml under /etc/containerd/certs.d). */
  readonly path: string;
  readonly content: string;
}

export interface GeneratedConfig {
  readonly files: readonly GeneratedFile[];
  /** What to do with the files, and what the client cannot do; printed to stderr. */
  readonly notes: readonly string[];
}

/** The mirror table cannot be expressed in the client's format (e.g. docker without a Docker Hub default). */
export class ClientConfigError extends Error {
  override readonly name = 'ClientConfigError';
}

/** http://mirror:5000 or https://mirror; a path, query or credentials would be misread by the clients. */
export function parseEndpoint(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClientConfigError(`--endpoint "${text}" is not a URL (use e.g. http://mirror:5000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClientConfigError(`--endpoint must be http:// or https:// (got ${url.protocol})`);
  if (url.pathname !== '/' || url.search || url.hash) throw new ClientConfigError('--endpoint must be the mirror root, without a path or query');
  if (url.username || url.password) throw new ClientConfigError('--endpoint must not carry credentials');
  return url;
}

/** Image references name their registry by any alias; every alias needs its own client entry. */
export function aliasHosts(upstreams: MirrorTable): { upstream: MirrorTable[number]; host: string }[] {
  const seen = new Set<string>();
  const out: { upstream: MirrorTable[number]; host: string }[] = [];
  for (const upstream of upstreams) {
    for (const host of upstream.aliases) {
      if (seen.has(host)) continue;
      seen.add(host);
      out.push({ upstream, host });
    }
  }
  return out;
}

/** Whether TLS towards the mirror is either off or not verified: clients call that "insecure". */
export function insecureEndpoint(options: ClientOptions): boolean {
  return options.endpoint.protocol === 'http:' || options.skipVerify === true;
}

export function tomlString(value: string): string {
  // TOML basic strings share JSON's escapes for everything a host name or path can hold.
  return JSON.stringify(value);
}

/** Docker Hub's registry API host: what `docker.io` means to every client. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

/** The registry API origin clients use for a registry name (docker.io is served by registry-1.docker.io). */
export function registryOrigin(host: string): string {
  return `https://${host === 'docker.io' || host === 'index.docker.io' ? DOCKER_HUB_API : host}`;
}
