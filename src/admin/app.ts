// The admin application: cache tools for operators (ls, inspect, rm). It is served on its own listener
// (config `admin.listen`, loopback by default), never on the public one: it can delete cached images.
import { Hono } from 'hono';
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
  app.route('/', adminRoutes(registry));
  app.notFound((c) => {
    c.set('route', 'not_found');
    return errorResponse(c, new OciError('UNSUPPORTED', 'no such admin endpoint', { status: 404 }));
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}

/**
 * Starts the admin listeners. A failure (typically the port taken by another instance on the host) is
 * logged and the mirror serves pulls anyway: the admin API is for operators, pulls are for the cluster.
 */
export async function startAdmin(registry: RegistryDeps, logger: Logger): Promise<RunningServer | undefined> {
  const addresses = registry.mirror.config.admin.listen;
  if (addresses.length === 0) return undefined;
  try {
    return await listen(createAdminApp(registry), addresses);
  } catch (err) {
    logger.error({ err, listen: addresses }, 'admin API not started; set admin.listen to a free address, or admin: false');
    return undefined;
  }
}
