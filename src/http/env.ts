// What handlers share per request (Hono context variables).
import type { Logger } from '../observability/logger.ts';

export interface AppEnv {
  Variables: {
    log: Logger;
    /** A short route name for logs and metrics labels (never a raw path). */
    route: string;
    cache: string;
    upstream: string;
    repo: string;
    error: unknown;
    bytes: number;
  };
}
