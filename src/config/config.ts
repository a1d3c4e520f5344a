// The typed, validated, frozen configuration that the rest of the program receives.
import type { Secret } from './secret.ts';
import type { S3StorageConfig } from './storage.ts';

export type Credentials =
  | { readonly kind: 'basic'; readonly username: string; readonly password: Secret }
  | { readonly kind: 'token'; readonly token: Secret };

/** An outbound HTTP proxy: its URL (never with credentials in it) and the credentials it asks for. */
export interface ProxyEndpoint {
  readonly url: string;
  readonly credentials?: { readonly username: string; readonly password: Secret };
}

/** Where an upstream's traffic goes through a proxy: http:// targets forwarded, https:// ones tunnelled (CONNECT). */
export interface ProxyConfig {
  readonly http?: ProxyEndpoint;
  readonly https?: ProxyEndpoint;
  /** Hosts reached directly, in NO_PROXY's syntax (`host`, `.domain`, `host:port`, `*`, comma-separated). */
  readonly noProxy: string;
}

export interface UpstreamConfig {
  /** The name the mirror table uses; also the value of `?ns=` and the OCI-Namespace header. */
  readonly name: string;
  /** Origin of the upstream registry, e.g. https://registry-1.docker.io. */
  readonly url: string;
  /** Lower-case host names (with port where given) that select this upstream by ns, Host or path prefix. */
  readonly aliases: readonly string[];
  readonly isDefault: boolean;
  readonly tagTtlMs: number;
  readonly insecure: boolean;
  readonly officialImages: boolean;
  readonly offline: boolean;
  readonly credentials?: Credentials;
  /** Where to connect instead of resolving the URL's host; Host header and TLS name stay the URL's. */
  readonly address?: { readonly host: string; readonly port?: number };
  /** Pushes to this upstream's names are kept locally and answered instead of the upstream's. */
  readonly overrides: boolean;
  /** With auth on, its content is served only to callers a rule lets pull it. */
  readonly private: boolean;
  /** Redirects and token realms may lead to loopback, link-local and private addresses (upstream/target-policy.ts). */
  readonly allowPrivateRedirects: boolean;
  /** Connections at once: this many for blob downloads, as many for manifests, tags, HEADs and tokens. */
  readonly maxConnections: number;
  /** A client's GET of an image manifest fetched from here starts downloading its config and layers (mirror/prefetch.ts). */
  readonly prefetch: boolean;
  /** Prefetch downloads from this upstream at once. */
  readonly prefetchConcurrency: number;
  /** The outbound proxy for its traffic (its CDN and token realm included); undefined: direct. */
  readonly proxy?: ProxyConfig;
  /** PEM CA certificates its TLS certificate must chain to, instead of the system's. */
  readonly ca?: string;
}

export type AuthAction = 'pull' | 'push' | 'delete';

export interface AuthRule {
  /** Globs over repository names: `*` within one path component, `**` across them. */
  readonly repos: readonly string[];
  readonly users: readonly string[];
  readonly groups: readonly string[];
  readonly actions: readonly AuthAction[];
}

export interface AuthConfig {
  /** Absolute path of the htpasswd file, if users log in with passwords. */
  readonly htpasswdFile?: string;
  readonly anonymous: readonly AuthAction[];
  readonly rules: readonly AuthRule[];
  readonly groups: Readonly<Record<string, readonly string[]>>;
  readonly admins: readonly string[];
  readonly service: string;
  readonly tokenTtlMs: number;
  readonly realm?: string;
  readonly maxFailuresPerAddress: number;
  readonly maxFailuresPerUser: number;
}

export interface Config {
  readonly listen: readonly string[];
  /** The admin API's listen addresses; empty when it is off. */
  readonly admin: { readonly listen: readonly string[] };
  /** The web UI at / (src/ui/). */
  readonly ui: { readonly enabled: boolean };
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  /** TLS listen addresses (none by default) and the certificate they serve (absolute paths). */
  readonly tls: { readonly listen: readonly string[]; readonly certFile: string; readonly keyFile: string };
  readonly redis?: { readonly url: string; readonly keyPrefix: string };
  /** Blobs, manifests and the hosted index in an S3 bucket (s3), else in the data dir. */
  readonly storage: { readonly s3?: S3StorageConfig };
  readonly upstreams: readonly UpstreamConfig[];
  readonly hosted: {
    /** Repository name prefixes (e.g. "lab", "myorg/team") whose repositories live here, not upstream. */
    readonly namespaces: readonly string[];
    /** Upload sessions untouched this long are removed. */
    readonly uploadTtlMs: number;
  };
  readonly shutdownGraceMs: number;
  readonly tagsListTtlMs: number;
  readonly upstreamTimeouts: { readonly connectMs: number; readonly responseMs: number; readonly idleMs: number; readonly minBytesPerSecond: number };
  readonly upstreamRetries: number;
  readonly cache: {
    readonly maxSizeBytes?: number;
    readonly lowWater: number;
    readonly manifestLruEntries: number;
    readonly negativeTtlMs: number;
    /** A prefetched blob no client asked for within this long counts as never requested. */
    readonly prefetchUnusedAfterMs: number;
  };
  /** Client authentication; undefined: off (lab mode). */
  readonly auth?: AuthConfig;
  readonly gc: { readonly intervalMs: number; readonly graceMs: number; readonly deleteUntagged: boolean };
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}
