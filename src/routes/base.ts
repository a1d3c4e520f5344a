// GET /v2/: the API version check every client starts with (podman, skopeo, docker).
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';

export function baseRoutes(): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/', (c) => {
    c.set('route', 'base');
    return c.json({});
  });
}
