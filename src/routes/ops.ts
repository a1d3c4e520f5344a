// Operations endpoints: liveness, readiness, Prometheus metrics.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void>;
}

export function opsRoutes(options: { metrics: Metrics; checks: readonly ReadinessCheck[] }): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get('/healthz', (c) => {
      c.set('route', 'healthz');
      return c.json({ status: 'ok' });
    })
    .get('/readyz', async (c) => {
      c.set('route', 'readyz');
      const results = await Promise.all(
        options.checks.map(async ({ name, check }) => {
          try {
            await check();
            return [name, 'ok'] as const;
          } catch (err) {
            return [name, (err as Error).message || 'failed'] as const;
          }
        }),
      );
      const ready = results.every(([, status]) => status === 'ok');
      return c.json({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) }, ready ? 200 : 503);
    })
    .get('/metrics', async (c) => {
      c.set('route', 'metrics');
      return c.body(await options.metrics.registry.metrics(), 200, { 'content-type': options.metrics.registry.contentType });
    });
}
