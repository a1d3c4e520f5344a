// What handlers share per request (Hono context variables).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthAction } from '../config/config.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { Logger } from '../observability/logger.ts';

export interface AppEnv {
  /** From @hono/node-server; absent under app.request() in tests. */
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: {
    log: Logger;
    /** A short route name for logs and metrics labels (never a raw path). */
    route: string;
    cache: string;
    upstream: string;
    repo: string;
    error: unknown;
    bytes: number;
    /** Who the request authenticated as (user or token name), when client authentication is on. */
    user: string;
    /** With client authentication on: whether the caller may do `action` on `target` (catalog, mounts). */
    authorize: (target: Target, action: AuthAction) => boolean;
  };
}
