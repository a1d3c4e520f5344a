// Reads the YAML file, applies OCIMIRROR_* environment overrides, validates once and freezes.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import type { AuthConfig, Config, Credentials, UpstreamConfig } from './config.ts';
import { DEFAULT_HOSTED_NAMESPACES, DEFAULT_UPSTREAMS } from './defaults.ts';
import { isValidName } from '../oci/reference.ts';
import { resolveProxy } from './proxy.ts';
import { configSchema, type ConfigInput, type ParsedConfig } from './schema.ts';
import { readSecret, Secret } from './secret.ts';
import { resolveS3Storage } from './storage.ts';
import { selfReferences } from './self-reference.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables that override single config keys (the file's value loses). */
const ENV_OVERRIDES: Record<string, (input: Record<string, unknown>, value: string) => void> = {
  OCIMIRROR_LISTEN: (c, v) => (c.listen = v.split(',').map((s) => s.trim()).filter(Boolean)),
  OCIMIRROR_DATA_DIR: (c, v) => (c.dataDir = v),
  OCIMIRROR_TLS_LISTEN: (c, v) => (c.tls = { ...(c.tls as object | undefined), listen: v.split(',').map((s) => s.trim()).filter(Boolean) }),
  OCIMIRROR_ADMIN_LISTEN: (c, v) => (c.admin = { listen: v.split(',').map((s) => s.trim()).filter(Boolean) }),
  OCIMIRROR_REDIS_URL: (c, v) => (c.redis = v === '' ? undefined : { ...(c.redis as object | undefined), url: v }),
  OCIMIRROR_OFFLINE: (c, v) => (c.offline = /^(1|true|yes|on)$/i.test(v)),
  OCIMIRROR_LOG_LEVEL: (c, v) => (c.log = { ...(c.log as object | undefined), level: v }),
  OCIMIRROR_CACHE_MAX_SIZE: (c, v) => (c.cache = { ...(c.cache as object | undefined), maxSize: v }),
  // Per pod (http://$(POD_IP):5000 in the chart); applies only where storage.s3 is configured.
  OCIMIRROR_S3_PEER_URL: (c, v) => {
    const storage = c.storage as { s3?: object } | undefined;
    if (storage?.s3 && v) c.storage = { ...storage, s3: { ...storage.s3, peerUrl: v } };
  },
};

export interface LoadOptions {
  /** Path of a YAML config file; when absent, OCIMIRROR_CONFIG is used, else built-in defaults. */
  readonly file?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Applied after the file and environment (CLI flags). */
  readonly overrides?: Partial<ConfigInput>;
  readonly cwd?: string;
  /** For commands that never contact an upstream (config, tls init): credentials are not resolved. */
  readonly skipCredentials?: boolean;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = options.file ?? (env.OCIMIRROR_CONFIG || undefined);
  const input: Record<string, unknown> = file ? readYaml(resolve(cwd, file)) : {};
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined) apply(input, value);
  }
  Object.assign(input, options.overrides);
  if (options.skipCredentials && Array.isArray(input.upstreams)) {
    input.upstreams = input.upstreams.map((u: unknown) => (u && typeof u === 'object' ? { ...u, credentials: undefined, ...withoutProxyCredentials(u) } : u));
  }
  return parseConfig(input, { env, cwd, source: file ?? 'defaults' });
}

/** Validates an already-read config object; exported for tests and the config generators. */
export function parseConfig(input: unknown, ctx: { env?: NodeJS.ProcessEnv; cwd?: string; source?: string } = {}): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(`invalid config (${ctx.source ?? 'input'}):\n${formatIssues(result.error)}`);
  return freeze(finish(result.data, ctx.env ?? process.env, ctx.cwd ?? process.cwd()));
}

function readYaml(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must hold a mapping at the top level`);
  return doc as Record<string, unknown>;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`).join('\n');
}

function finish(parsed: ParsedConfig, env: NodeJS.ProcessEnv, cwd: string): Config {
  const problems: string[] = [];
  const inputs = parsed.upstreams ?? configSchema.shape.upstreams.unwrap().parse(DEFAULT_UPSTREAMS);
  const upstreams: UpstreamConfig[] = inputs.map((u, i) => {
    const host = new URL(u.url).host.toLowerCase();
    // Several names on one lab registry (docker.io and quay.io both at http://10.0.0.5:5000) are told
    // apart by name: a URL host they share is no default alias of any of them.
    const shared = inputs.filter((other) => new URL(other.url).host.toLowerCase() === host).length > 1;
    const aliases = [...new Set((u.aliases ?? [u.name.toLowerCase(), ...(shared ? [] : [host])]).map((a) => a.toLowerCase()))];
    const credentials = u.credentials ? resolveCredentials(u.credentials, env, cwd, `upstreams.${i}.credentials`, problems) : undefined;
    const proxy = resolveProxy(u.proxy, proxyCredentials(u.proxy, env, cwd, `upstreams.${i}.proxy.credentials`, problems), env, `upstreams.${i}.proxy`, problems);
    const ca = u.ca === undefined ? undefined : readCa(resolve(cwd, u.ca), `upstreams.${i}.ca`, problems);
    return {
      name: u.name,
      url: u.url,
      aliases,
      isDefault: u.default || inputs.length === 1,
      tagTtlMs: u.tagTtl,
      insecure: u.insecure,
      officialImages: u.officialImages ?? aliases.includes('docker.io'),
      offline: u.offline ?? parsed.offline,
      ...(credentials ? { credentials } : {}),
      ...(u.address ? { address: u.address } : {}),
      overrides: u.overrides,
      private: u.private ?? credentials !== undefined,
      allowPrivateRedirects: u.allowPrivateRedirects,
      maxConnections: u.maxConnections,
      prefetch: u.prefetch,
      prefetchConcurrency: u.prefetchConcurrency,
      // An upstream pinned to an address is connected to there, not through a proxy from the environment.
      ...(proxy && !u.address ? { proxy } : {}),
      ...(ca ? { ca } : {}),
    };
  });

  const names = new Set<string>();
  const aliasOwner = new Map<string, string>();
  for (const u of upstreams) {
    if (names.has(u.name)) problems.push(`upstreams: the name "${u.name}" is used twice`);
    names.add(u.name);
    for (const alias of u.aliases) {
      const owner = aliasOwner.get(alias);
      if (owner && owner !== u.name) problems.push(`upstreams: alias "${alias}" belongs to both "${owner}" and "${u.name}": an alias selects one upstream; list it in the aliases of only one of them`);
      aliasOwner.set(alias, u.name);
    }
  }
  const defaults = upstreams.filter((u) => u.isDefault);
  if (defaults.length > 1) problems.push(`upstreams: only one entry may be default (found ${defaults.map((d) => d.name).join(', ')})`);
  for (const u of upstreams) if (u.name === '.' || u.name === '..') problems.push(`upstreams: "${u.name}" is not a usable name`);
  const hosted = hostedNamespaces(parsed.hosted?.namespaces, upstreams, problems);
  if (parsed.redis && !parsed.redis.keyPrefix) problems.push('redis.keyPrefix: must not be empty');
  const s3 = parsed.storage?.s3 ? resolveS3Storage(parsed.storage.s3, env, cwd, problems) : undefined;
  const listen = Array.isArray(parsed.listen) ? parsed.listen : [parsed.listen];
  const tlsListen = [parsed.tls.listen].flat();
  problems.push(...selfReferences([...listen, ...tlsListen], upstreams, localAddresses()));
  if (problems.length) throw new ConfigError(`invalid config:\n${problems.map((p) => `  - ${p}`).join('\n')}`);

  return {
    listen,
    admin: { listen: parsed.admin === false ? [] : [parsed.admin.listen].flat() },
    ui: { enabled: typeof parsed.ui === 'boolean' ? parsed.ui : parsed.ui.enabled },
    dataDir: resolve(cwd, parsed.dataDir),
    tls: {
      listen: tlsListen,
      certFile: resolve(cwd, parsed.tls.certFile ?? join(parsed.dataDir, 'tls', 'server.crt')),
      keyFile: resolve(cwd, parsed.tls.keyFile ?? join(parsed.dataDir, 'tls', 'server.key')),
    },
    ...(parsed.redis ? { redis: { url: parsed.redis.url, keyPrefix: parsed.redis.keyPrefix } } : {}),
    storage: s3 ? { s3 } : {},
    upstreams,
    hosted: { namespaces: hosted, uploadTtlMs: parsed.hosted?.uploadTtl ?? 3_600_000 },
    shutdownGraceMs: parsed.shutdownGrace,
    tagsListTtlMs: parsed.tagsListTtl,
    upstreamTimeouts: {
      connectMs: parsed.upstreamTimeouts.connect,
      responseMs: parsed.upstreamTimeouts.response,
      idleMs: parsed.upstreamTimeouts.idle,
      minBytesPerSecond: parsed.upstreamTimeouts.minRate,
    },
    upstreamRetries: parsed.upstreamRetries,
    cache: {
      ...(parsed.cache.maxSize !== undefined ? { maxSizeBytes: parsed.cache.maxSize } : {}),
      lowWater: parsed.cache.lowWater,
      manifestLruEntries: parsed.cache.manifestLruEntries,
      negativeTtlMs: parsed.cache.negativeTtl,
      prefetchUnusedAfterMs: parsed.cache.prefetchUnusedAfter,
    },
    ...(parsed.auth ? { auth: authConfig(parsed.auth, cwd) } : {}),
    gc: { intervalMs: parsed.gc.interval, graceMs: parsed.gc.grace, deleteUntagged: parsed.gc.deleteUntagged },
    log: parsed.log,
  };
}

/**
 * The hosted namespaces: valid repository names, none the first path component of which is an upstream's
 * name or alias (a path-prefix route would be ambiguous). Without a `hosted` key the default namespaces
 * apply, less any that collide with the mirror table.
 */
function hostedNamespaces(configured: readonly string[] | undefined, upstreams: readonly UpstreamConfig[], problems: string[]): string[] {
  const prefixes = new Set(upstreams.flatMap((u) => [u.name.toLowerCase(), ...u.aliases]));
  const collides = (ns: string) => prefixes.has(ns.split('/')[0]!);
  if (configured === undefined) return DEFAULT_HOSTED_NAMESPACES.filter((ns) => !collides(ns));
  const namespaces = configured.map((ns) => ns.replace(/\/+$/, ''));
  for (const ns of namespaces) {
    if (!isValidName(ns)) problems.push(`hosted.namespaces: "${ns}" is not a repository name (lower-case letters, digits, . _ - and /)`);
    else if (collides(ns)) problems.push(`hosted.namespaces: "${ns}" starts with the upstream name or alias "${ns.split('/')[0]}"; pick another prefix`);
  }
  return [...new Set(namespaces)];
}

function authConfig(a: NonNullable<ParsedConfig['auth']>, cwd: string): AuthConfig {
  return {
    ...(a.htpasswd ? { htpasswdFile: resolve(cwd, a.htpasswd) } : {}),
    anonymous: a.anonymous,
    rules: a.rules,
    groups: a.groups,
    admins: a.admins,
    service: a.service,
    tokenTtlMs: a.tokenTtl,
    ...(a.realm ? { realm: a.realm } : {}),
    maxFailuresPerAddress: a.maxFailuresPerAddress,
    maxFailuresPerUser: a.maxFailuresPerUser,
  };
}

type CredentialsInput = NonNullable<NonNullable<ParsedConfig['upstreams']>[number]['credentials']>;

function resolveCredentials(c: CredentialsInput, env: NodeJS.ProcessEnv, cwd: string, where: string, problems: string[]): Credentials | undefined {
  const token = readSecret({ inline: c.token, env: c.tokenEnv, file: c.tokenFile }, env, cwd, where, problems);
  if (token?.reveal()) return { kind: 'token', token };
  const password = readSecret({ inline: c.password, env: c.passwordEnv, file: c.passwordFile }, env, cwd, where, problems);
  if (c.username && password?.reveal()) return { kind: 'basic', username: c.username, password };
  return undefined;
}

type ProxyInput = NonNullable<ParsedConfig['upstreams']>[number]['proxy'];

/** A proxy asks for a user name and password (Proxy-Authorization: Basic), not a registry token. */
function proxyCredentials(proxy: ProxyInput, env: NodeJS.ProcessEnv, cwd: string, where: string, problems: string[]): { username: string; password: Secret } | undefined {
  if (typeof proxy !== 'object' || !proxy.credentials) return undefined;
  const resolved = resolveCredentials(proxy.credentials, env, cwd, where, problems);
  if (resolved?.kind === 'token') problems.push(`${where}: a proxy takes a username and password, not a token`);
  return resolved?.kind === 'basic' ? { username: resolved.username, password: resolved.password } : undefined;
}

function withoutProxyCredentials(upstream: object): object {
  const proxy = (upstream as { proxy?: unknown }).proxy;
  return proxy && typeof proxy === 'object' ? { proxy: { ...proxy, credentials: undefined } } : {};
}

function readCa(path: string, where: string, problems: string[]): string | undefined {
  try {
    const pem = readFileSync(path, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${where}: ${path} holds no PEM certificate`);
    return pem;
  } catch (err) {
    problems.push(`${where}: cannot read ${path}: ${(err as Error).message}`);
    return undefined;
  }
}

function freeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const v of Object.values(value)) freeze(v);
    Object.freeze(value);
  }
  return value;
}

/** This machine's IP addresses, for spotting an upstream that is the mirror itself. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address.toLowerCase()));
}
