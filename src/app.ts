// The HTTP application: middleware, the endpoint families, and the single error mapper.
import { Hono } from 'hono';
import { registryAuth } from './auth/middleware.ts';
import { accessLog } from './http/access-log.ts';
import type { AppEnv } from './http/env.ts';
import { errorResponse } from './http/error-response.ts';
import { OciError } from './oci/errors.ts';
import { loopGuard } from './http/loop-guard.ts';
import { baseRoutes } from './routes/base.ts';
import { blobRoutes } from './routes/blobs.ts';
import { catalogRoutes } from './routes/catalog.ts';
import type { RegistryDeps } from './routes/deps.ts';
import { manifestRoutes } from './routes/manifests.ts';
import { opsRoutes, type ReadinessCheck } from './routes/ops.ts';
import { peerUploadRoutes } from './routes/peer-uploads.ts';
import { referrerRoutes } from './routes/referrers.ts';
import { tagRoutes } from './routes/tags.ts';
import { tokenRoutes } from './routes/token.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { uiRoutes } from './ui/app.ts';

export function createApp(registry: RegistryDeps, options: { readiness: readonly ReadinessCheck[] }): Hono<AppEnv> {
  const deps = registry.mirror;
  const app = new Hono<AppEnv>();
  app.use(accessLog({ logger: deps.logger, metrics: deps.metrics }));
  app.use('/v2/*', async function registryHeaders(c, next) {
    c.header('Docker-Distribution-API-Version', 'registry/2.0');
    await next();
  });
  app.use('/v2/*', loopGuard({ instanceId: deps.instanceId }));
  if (registry.auth) {
    app.use('/v2/*', registryAuth({ ...registry.auth, resolver: registry.resolver }));
    app.route('/', tokenRoutes({ ...registry.auth, resolver: registry.resolver }));
  }
  app.route('/', baseRoutes());
  app.route('/', catalogRoutes(registry));
  app.route('/', tagRoutes(registry));
  app.route('/', referrerRoutes(registry));
  app.route('/', manifestRoutes(registry));
  app.route('/', uploadRoutes(registry));
  app.route('/', blobRoutes(registry));
  app.route('/', opsRoutes({ metrics: deps.metrics, checks: options.readiness }));
  // Replicas without a shared volume read each other's downloads in progress here (storage.s3.peerUrl).
  if (registry.peers) app.route('/', peerUploadRoutes(registry.peers));
  if (deps.config.ui.enabled) app.route('/', uiRoutes(registry, { fetch: (request) => app.fetch(request) }));
  app.notFound((c) => {
    c.set('route', 'not_found');
    return errorResponse(c, new OciError('UNSUPPORTED', 'no such endpoint', { status: 404 }));
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}
