// The config file's shape: one zod schema that validates, defaults and converts units in one pass.
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_ADMIN_LISTEN } from './defaults.ts';
import { parseListen } from './listen.ts';
import { storageSchema } from './storage.ts';
import { parseDurationMs, parseSizeBytes } from './units.ts';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDurationMs(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 30s, 10m, 1h30m)` });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSizeBytes(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 512MiB, 50GiB)` });
    return z.NEVER;
  }
  return bytes;
});

/** Why `text` is no listen address (host:port, :port, [v6]:port), or undefined when it is one. */
export function listenAddressProblem(text: string): string | undefined {
  // A bare port does not say which interfaces to serve: loopback only, or every one.
  if (/^\d+$/.test(text.trim())) return `"${text}" is a bare port: write 127.0.0.1:${text.trim()} (this machine only) or :${text.trim()} (every interface)`;
  try {
    parseListen(text);
    return undefined;
  } catch {
    return `"${text}" is not a listen address (host:port, e.g. 127.0.0.1:5000, :5000, [::1]:5000)`;
  }
}

const listenAddress = z
  .string()
  .trim()
  .superRefine((text, ctx) => {
    const problem = listenAddressProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** host or host:port, or [v6]:port, as a client would put it in an image reference or Host header. */
const hostName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'is not a host name (host or host:port)');

const credentials = z
  .object({
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    passwordEnv: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    tokenEnv: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const passwords = [c.password, c.passwordEnv, c.passwordFile].filter((v) => v !== undefined).length;
    const tokens = [c.token, c.tokenEnv, c.tokenFile].filter((v) => v !== undefined).length;
    if (passwords > 1) ctx.addIssue({ code: 'custom', message: 'give only one of password, passwordEnv, passwordFile' });
    if (tokens > 1) ctx.addIssue({ code: 'custom', message: 'give only one of token, tokenEnv, tokenFile' });
    if (passwords === 1 && tokens === 1) ctx.addIssue({ code: 'custom', message: 'give either a username/password or a token, not both' });
    if (passwords === 1 && !c.username) ctx.addIssue({ code: 'custom', message: 'a password needs a username' });
    if (c.username && passwords === 0) ctx.addIssue({ code: 'custom', message: 'a username needs a password (password, passwordEnv or passwordFile)' });
  });

/** 192.0.2.7, 192.0.2.7:8443, 2001:db8::7 or [2001:db8::7]:8443: where to connect, bypassing DNS and /etc/hosts. */
const ipAddress = z
  .string()
  .trim()
  .transform((value, ctx) => {
    const match = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(value) ?? /^([\d.]+)(?::(\d{1,5}))?$/.exec(value) ?? /^([0-9a-fA-F:.]+)()$/.exec(value);
    const host = match?.[1] ?? '';
    const port = match?.[2] ? Number(match[2]) : undefined;
    if (!isIP(host) || (port !== undefined && (port < 1 || port > 65535))) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not an IP address with an optional port (e.g. 192.0.2.7 or [2001:db8::7]:443)` });
      return z.NEVER;
    }
    return port === undefined ? { host } : { host, port };
  });

/** An outbound proxy's URL: http(s)://host:port, credentials given apart (they would be logged with the URL). */
const proxyUrl = z
  .string()
  .refine((u) => URL.canParse(u) && /^https?:\/\//i.test(u), 'must be an http:// or https:// URL (with the scheme)')
  .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not carry a user name or password: give them under credentials: (username, and password, passwordEnv or passwordFile)');

const upstream = z
  .object({
    name: z.string().trim().min(1).regex(/^[A-Za-z0-9._:-]+$/, 'may contain only letters, digits and . _ : -'),
    url: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:\/\//i.test(u), 'must be an http:// or https:// URL (with the scheme)')
      .refine((u) => !URL.canParse(u) || ['', '/'].includes(new URL(u).pathname), 'must be the registry root (no path)')
      .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not carry a user name or password: give them under credentials: (username, and password, passwordEnv or passwordFile)')
      .transform((u) => (URL.canParse(u) ? new URL(u).origin : u)),
    aliases: z.array(hostName).optional(),
    default: z.boolean().default(false),
    tagTtl: duration.default(600_000),
    /** Skip TLS certificate verification towards this upstream (lab registries with self-signed certs). */
    insecure: z.boolean().default(false),
    /** Map one-component names to library/<name>, as Docker Hub does for official images. */
    officialImages: z.boolean().optional(),
    /** Serve only what is cached for this upstream. */
    offline: z.boolean().optional(),
    credentials: credentials.optional(),
    /** Connect here instead of resolving the URL's host (Host header and TLS still use the URL's host). */
    address: ipAddress.optional(),
    /** Accept pushes to this upstream's names and answer them instead of the upstream's (see hosted/). */
    overrides: z.boolean().default(false),
    /** With auth on: serve this upstream's content only to callers a rule lets pull it (default: when credentials are set). */
    private: z.boolean().optional(),
    /** Follow redirects and token realms to loopback, link-local and private addresses even where the upstream does not live. */
    allowPrivateRedirects: z.boolean().default(false),
    /** Connections to the upstream (and its CDN and token realm) at once: this many for blob downloads, as many for the rest. */
    maxConnections: z.number().int().min(1).max(10_000).default(64),
    /** When a client GETs an image manifest fetched from here, download its config and layers at once (mirror/prefetch.ts). */
    prefetch: z.boolean().default(true),
    /** Prefetch downloads from this upstream at once. */
    prefetchConcurrency: z.number().int().min(1).max(1_000).default(16),
    /**
     * The outbound HTTP proxy for this upstream's traffic (its CDN and token realm included): a URL, or
     * { url, credentials }; false goes direct whatever HTTPS_PROXY / HTTP_PROXY say.
     */
    proxy: z.union([z.literal(false), proxyUrl, z.object({ url: proxyUrl, credentials: credentials.optional() }).strict()]).optional(),
    /** A PEM file of CA certificates the upstream's certificate must chain to (instead of the system's). */
    ca: z.string().min(1).optional(),
  })
  .strict()
  .refine((u) => !(u.address && u.proxy), { message: 'address (connect here directly) and proxy exclude each other', path: ['proxy'] })
  .refine((u) => !u.address || !isIP(new URL(u.url).hostname.replace(/^\[|\]$/g, '')), {
    message: 'address is for an upstream whose URL names a host; this URL is already an address',
    path: ['address'],
  });

export const configSchema = z
  .object({
    listen: z.union([listenAddress, z.array(listenAddress).min(1)]).default('127.0.0.1:5000'),
    dataDir: z.string().min(1).default('./data'),
    /** The admin API (ocimirror ls/inspect/rm) on its own listener; false or `listen: []` turns it off. */
    admin: z
      .union([z.literal(false), z.object({ listen: z.union([listenAddress, z.array(listenAddress)]).default(DEFAULT_ADMIN_LISTEN) }).strict()])
      .default({ listen: DEFAULT_ADMIN_LISTEN }),
    /** The web UI at / on the registry's listeners (src/ui/); false turns it off. */
    ui: z.union([z.boolean(), z.object({ enabled: z.boolean().default(true) }).strict()]).default(true),
    /** TLS listeners (DNS-spoof mode) next to the plain ones; the certificate comes from `ocimirror tls init`. */
    tls: z
      .object({
        listen: z.union([listenAddress, z.array(listenAddress)]).default([]),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
      })
      .strict()
      .default({ listen: [] }),
    redis: z
      .object({ url: z.string().regex(/^(rediss?|redis\+sentinel|redis\+cluster):\/\//, 'must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL'), keyPrefix: z.string().default('ocimirror:') })
      .strict()
      .optional(),
    /** Where blobs, manifests and the hosted index live: the data dir (default) or an S3 bucket (storage.s3). */
    storage: storageSchema.optional(),
    upstreams: z.array(upstream).min(1).optional(),
    /** Hosted repositories: path prefixes that are a registry of their own, never sent upstream. */
    hosted: z
      .object({
        namespaces: z.array(z.string().trim().min(1)).default([]),
        /** An upload session untouched this long is abandoned and removed. */
        uploadTtl: duration.default(3_600_000),
      })
      .strict()
      .optional(),
    offline: z.boolean().default(false),
    /** How long SIGTERM waits for responses and downloads in progress before exiting. */
    shutdownGrace: duration.default(30_000),
    tagsListTtl: duration.default(30_000),
    upstreamTimeouts: z
      .object({
        connect: duration.default(10_000),
        response: duration.default(25_000),
        idle: duration.default(60_000),
        /** A blob download slower than this (bytes per second, over each `idle` period) is ended. */
        minRate: size.default(4096),
      })
      .strict()
      .default({ connect: 10_000, response: 25_000, idle: 60_000, minRate: 4096 }),
    upstreamRetries: z.number().int().min(0).max(10).default(2),
    cache: z
      .object({
        maxSize: size.optional(),
        lowWater: z.number().gt(0).lt(1).default(0.9),
        manifestLruEntries: z.number().int().min(0).default(2000),
        negativeTtl: duration.default(30_000),
        /** A prefetched blob no client asked for within this long counts as prefetched but never requested. */
        prefetchUnusedAfter: duration.default(600_000),
      })
      .strict()
      .default({ lowWater: 0.9, manifestLruEntries: 2000, negativeTtl: 30_000, prefetchUnusedAfter: 600_000 }),
    /** Client authentication and access rules; absent: anyone who reaches the mirror may pull and push (lab mode). */
    auth: z
      .object({
        /** Users, as `htpasswd -B` writes them (bcrypt only); re-read when the file changes. */
        htpasswd: z.string().min(1).optional(),
        /** What clients without credentials may do on mirrored public content. */
        anonymous: z.array(z.enum(['pull'])).default(['pull']),
        rules: z
          .array(
            z
              .object({
                repos: z.array(z.string().min(1)).min(1),
                users: z.array(z.string().min(1)).default([]),
                groups: z.array(z.string().min(1)).default([]),
                actions: z.array(z.enum(['pull', 'push', 'delete'])).min(1),
              })
              .strict(),
          )
          .default([]),
        groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
        /** Users who may use the admin API and the operator commands. */
        admins: z.array(z.string().min(1)).default([]),
        /** The token audience clients name as service=. */
        service: z.string().min(1).default('ocimirror'),
        tokenTtl: duration.default(300_000),
        /** The token URL announced in challenges; default: /auth/token on the host the client used. */
        realm: z.string().url().optional(),
        /** Failed logins allowed per client address, and per user, within a minute before 429. */
        maxFailuresPerAddress: z.number().int().min(1).default(10),
        maxFailuresPerUser: z.number().int().min(1).default(100),
      })
      .strict()
      .optional(),
    /** Online garbage collection of unreferenced blobs and manifests (hosted and cached). */
    gc: z
      .object({
        /** How often it runs by itself; 0 never (then `ocimirror gc` or the admin API run it). */
        interval: duration.default(86_400_000),
        /** Content written, linked or pushed this recently is kept even when nothing references it yet. */
        grace: duration.default(3_600_000),
        /** Also free hosted manifests that no tag (and no kept index or subject) reaches. */
        deleteUntagged: z.boolean().default(false),
      })
      .strict()
      .default({ interval: 86_400_000, grace: 3_600_000, deleteUntagged: false }),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type UpstreamInput = z.input<typeof upstream>;
export type ParsedConfig = z.output<typeof configSchema>;
