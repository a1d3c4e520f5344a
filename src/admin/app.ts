// The admin application: cache tools for operators (ls, inspect, rm, gc). It is served on its own
// listener (config `admin.listen`, loopback by default), never on the public one: it can delete cached
// images.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Hono, type MiddlewareHandler } from 'hono';
import { adminAuth } from '../auth/admin-gate.ts';
import { parseListen } from '../config/listen.ts';
import { accessLog } from '../http/access-log.ts';
import type { AppEnv } from '../http/env.ts';
import { errorResponse } from '../http/error-response.ts';
import { OciError } from '../oci/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { listen, type RunningServer } from '../server.ts';
import { adminRoutes } from './routes.ts';

export function createAdminApp(registry: RegistryDeps): Hono<AppEnv> {
  const deps = registry.mirror;
  const app = new Hono<AppEnv>();
  app.use(accessLog({ logger: deps.logger, metrics: deps.metrics }));
  app.use(adminHostGuard(deps.config.admin.listen));
  // With client authentication on, only users in auth.admins (Basic credentials).
  if (registry.auth) app.use(adminAuth(registry.auth));
  app.route('/', adminRoutes(registry));
  app.notFound((c) => {
    c.set('route', 'not_found');
    return errorResponse(c, new OciError('UNSUPPORTED', 'no such admin endpoint', { status: 404 }));
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}

/**
 * Starts the admin listeners. A failure (typically the port taken by another instance on the host)
 * rejects: an operator who configured the admin API expects it, and `serve` stops with one line.
 */
export async function startAdmin(registry: RegistryDeps, logger: Logger): Promise<RunningServer | undefined> {
  const addresses = registry.mirror.config.admin.listen;
  if (addresses.length === 0) return undefined;
  const everywhere = wildcardListens(addresses);
  if (everywhere.length) {
    logger.warn(
      { listen: everywhere },
      'the admin API listens on every interface: whoever reaches this host can delete cached images; give admin.listen a loopback or internal address (e.g. 127.0.0.1:5001)',
    );
  }
  return listen(createAdminApp(registry), addresses);
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** The listen addresses that bind every interface (":5001", "0.0.0.0:5001", "[::]:5001"). */
export function wildcardListens(addresses: readonly string[]): string[] {
  return addresses.filter((text) => {
    try {
      return WILDCARD_HOSTS.has(parseListen(text).host);
    } catch {
      return false; // refused when the server listens
    }
  });
}

/**
 * DNS rebinding: a web page on evil.example whose name the attacker re-points at 127.0.0.1 reaches a
 * loopback listener from the operator's browser, with `Host: evil.example`. The admin API answers only
 * requests naming it by loopback (localhost, 127.0.0.0/8, ::1) or by the address it listens on
 * (for a wildcard listener: any address of this machine). A request without Host is no browser's.
 */
export function adminHostGuard(listenAddresses: readonly string[]): MiddlewareHandler<AppEnv> {
  const own = new Set<string>();
  let wildcard = false;
  for (const text of listenAddresses) {
    try {
      const host = parseListen(text).host.toLowerCase();
      if (WILDCARD_HOSTS.has(host)) wildcard = true;
      else own.add(host);
    } catch {
      // refused when the server listens
    }
  }
  return async function adminHostGuard(c, next) {
    const header = c.req.header('host');
    if (header === undefined) return next();
    const host = hostOf(header);
    if (isLoopbackName(host) || own.has(host) || (wildcard && isIP(host) !== 0 && localAddresses().has(host))) return next();
    c.set('route', 'admin_refused');
    return errorResponse(
      c,
      new OciError('DENIED', `the admin API answers only to its own address or loopback, not to Host "${header.slice(0, 255)}" (DNS rebinding protection); use e.g. http://127.0.0.1:<port>`),
    );
  };
}

/** The host of a Host header, lower case, without port or IPv6 brackets. */
function hostOf(header: string): string {
  const text = header.trim().toLowerCase();
  if (text.startsWith('[')) return text.slice(1, text.indexOf(']') >= 0 ? text.indexOf(']') : undefined);
  const colon = text.lastIndexOf(':');
  return colon >= 0 && text.indexOf(':') === colon ? text.slice(0, colon) : text;
}

function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address.toLowerCase())));
}
