// Chooses the upstream for a /v2/<name>/... request and records it on the response and in the log.
import type { Context } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { UpstreamTable, type Routed } from '../upstream/route.ts';

export function routeRequest(c: Context<AppEnv>, table: UpstreamTable): Routed {
  const found = table.route({ ns: c.req.query('ns'), host: c.req.header('host'), name: c.req.param('name') ?? '' });
  const via = c.req.header('via');
  const routed: Routed = via ? { ...found, via } : found;
  c.set('upstream', routed.upstream.name);
  c.set('repo', routed.repo);
  // distribution-spec "Registry Proxying": echo the namespace that served the request.
  c.header('OCI-Namespace', routed.upstream.name);
  return routed;
}
