// What `serve` checks before and while it starts, so that a start-up mistake is one line saying what
// to do instead of a stack trace from deep inside a store.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { HtpasswdError } from '../auth/htpasswd.ts';
import { isRunning } from '../store/lock-file.ts';
import { StorageError } from '../store/storage-error.ts';
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import type { Config, UpstreamConfig } from '../config/config.ts';
import type { Logger } from '../observability/logger.ts';

const WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file',
  ENOSPC: 'no space left on the device',
  EEXIST: 'a file of that name exists',
};

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && WHY[code] ? `${WHY[code]} (${code})` : (err as Error).message;
}

/** Why the data dir cannot be used (a file, not creatable, not writable), or undefined. */
export async function dataDirProblem(dir: string): Promise<string | undefined> {
  const info = await stat(dir).catch(() => undefined);
  if (info && !info.isDirectory()) return `data dir ${dir} is a file, not a directory: give a directory (--data-dir, dataDir, OCIMIRROR_DATA_DIR)`;
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    return `cannot create data dir ${dir}: ${why(err)}; create it for this user (uid ${process.getuid?.() ?? '?'}) or give another (--data-dir)`;
  }
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    return `data dir ${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'}): ${why(err)}; chown it to this user or give another (--data-dir)`;
  }
  return undefined;
}

/**
 * A start-up failure of the runtime (stores) as one line, or undefined when it is not a known mistake.
 * The embedded store's lock (<dataDir>/metadata.lock, "<host> <pid>") says who holds the data dir.
 */
export async function runtimeProblem(err: unknown, config: Config): Promise<string | undefined> {
  if (err instanceof HtpasswdError || err instanceof StorageError) return err.message;
  if (!config.redis) {
    const lock = join(config.dataDir, 'metadata.lock');
    const [host, pidText] = (await readFile(lock, 'utf8').catch(() => '')).trim().split(' ');
    const pid = Number(pidText ?? host);
    const here = pidText === undefined || host === hostname();
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && (!here || isRunning(pid))) {
      const where = here ? '' : ` on host ${host}`;
      return (
        `data dir ${config.dataDir} is held by another process: pid ${pid}${where} holds ${lock}. ` +
        `Check with \`ps -p ${pid} -o pid,args\`${where ? ` on ${host}` : ''}; stop it, or give this instance its own --data-dir ` +
        '(several processes on one data dir need redis.url)'
      );
    }
  }
  const errno = err as NodeJS.ErrnoException;
  if (typeof errno.code === 'string' && typeof errno.path === 'string') return `cannot use data dir ${config.dataDir}: ${why(err)}: ${errno.path}`;
  return undefined;
}


/**
 * An `https://` URL for a registry that speaks plain HTTP (registry:2 on :5000, a lab registry) fails
 * every pull with a TLS error. One TLS handshake at start tells the two apart and logs the fix; nothing
 * waits for it, and an upstream that cannot be reached now says nothing (it may come up later). Only URLs
 * with a port of their own are tried: a public registry on 443 speaks TLS, and is not contacted before
 * a client asks for it; nor is an upstream behind an outbound proxy (the mirror may not reach it directly).
 */
export function checkUpstreamSchemes(upstreams: readonly UpstreamConfig[], logger: Logger): void {
  for (const u of upstreams) {
    const url = new URL(u.url);
    if (u.offline || u.proxy || url.protocol !== 'https:' || url.port === '') continue;
    const host = u.address?.host ?? url.hostname.replace(/^\[|\]$/g, '');
    const port = u.address?.port ?? Number(url.port);
    const servername = isIP(url.hostname.replace(/^\[|\]$/g, '')) ? undefined : url.hostname;
    const socket = connect({ host, port, ...(servername ? { servername } : {}), rejectUnauthorized: false, timeout: 5_000 });
    socket.unref();
    socket.once('secureConnect', () => socket.destroy());
    socket.once('timeout', () => socket.destroy());
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      if (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|http request/i.test(err.message)) {
        logger.error({ upstream: u.name, url: u.url }, `upstream "${u.name}" answers plain HTTP at ${url.host}, not HTTPS: write http://${url.host} as its url`);
      }
    });
  }
}
