// Where the operator commands (ls, inspect, rm, gc, warm) find the running mirror. In this order:
//   1. the flag (--admin URL, --server URL)
//   2. --config FILE: the admin API / the mirror at the addresses `serve` listens on with that file
//   3. $OCIMIRROR_ADMIN / $OCIMIRROR_SERVER
//   4. $OCIMIRROR_CONFIG, read as --config
//   5. the defaults, http://127.0.0.1:5001 and http://127.0.0.1:5000
// The config is read as `serve` reads it (the OCIMIRROR_* overrides included), credentials aside.
import { parseListen } from '../config/listen.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/config.ts';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:5001';
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:5000';

/** The command line's say: a URL flag and --config. */
export interface EndpointFlags {
  readonly url?: string | undefined;
  readonly config?: string | undefined;
}

/** The admin API's base URL (no trailing slash). Throws ConfigError for a config that cannot say. */
export function adminUrl(flags: EndpointFlags, env: NodeJS.ProcessEnv = process.env): string {
  return pick(flags, env, 'OCIMIRROR_ADMIN', DEFAULT_ADMIN_URL, (config, source) => {
    const first = config.admin.listen[0];
    if (first === undefined) throw new ConfigError(`${source} turns the admin API off (admin: false); turn it on there, or give --admin URL`);
    return listenUrl(first);
  });
}

/** The mirror's registry API (no trailing slash): its first plain listen address. */
export function serverUrl(flags: EndpointFlags, env: NodeJS.ProcessEnv = process.env): string {
  return pick(flags, env, 'OCIMIRROR_SERVER', DEFAULT_SERVER_URL, (config) => listenUrl(config.listen[0]!));
}

/** http://host:port of a listen address; a wildcard (":5001", "0.0.0.0:5001", "[::]:5001") is reached on 127.0.0.1. */
export function listenUrl(text: string): string {
  const { host, port } = parseListen(text);
  const reach = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
}

function pick(flags: EndpointFlags, env: NodeJS.ProcessEnv, variable: string, fallback: string, fromConfig: (config: Config, source: string) => string): string {
  const fromFile = (file: string, source: string) => fromConfig(loadConfig({ file, env, skipCredentials: true }), source);
  const url = flags.url || (flags.config ? fromFile(flags.config, `--config ${flags.config}`) : undefined) || env[variable] || (env.OCIMIRROR_CONFIG ? fromFile(env.OCIMIRROR_CONFIG, `OCIMIRROR_CONFIG=${env.OCIMIRROR_CONFIG}`) : undefined) || fallback;
  return url.replace(/\/+$/, '');
}
