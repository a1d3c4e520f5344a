// One place that turns `redis.url` into an ioredis client: a plain server (redis:// or rediss://),
// Sentinel (redis+sentinel://[:password@]host:port,host:port/<master name>[/db]) or Cluster
// (redis+cluster://[:password@]host:port,host:port). In a cluster every key carries the prefix's hash
// tag, so the multi-key scripts stay in one slot.
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  readonly kind: 'server' | 'sentinel' | 'cluster';
  readonly nodes: readonly { host: string; port: number }[];
  readonly password?: string;
  readonly masterName?: string;
  readonly db?: number;
}

/** Parses the Sentinel and Cluster forms; undefined for a plain redis:// or rediss:// URL. */
export function parseRedisTarget(url: string): RedisTarget | undefined {
  const match = /^redis\+(sentinel|cluster):\/\/(?::([^@]*)@)?([^/]+)(?:\/([^/]+))?(?:\/(\d+))?\/?$/.exec(url);
  if (!match) return undefined;
  const nodes = match[3]!.split(',').map((hostPort) => {
    const at = hostPort.lastIndexOf(':');
    return at > 0 ? { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) } : { host: hostPort, port: match[1] === 'sentinel' ? 26379 : 6379 };
  });
  const kind = match[1] as 'sentinel' | 'cluster';
  if (kind === 'sentinel' && !match[4]) throw new Error('a redis+sentinel:// URL needs the master name as its path: redis+sentinel://host:26379/mymaster');
  return {
    kind,
    nodes,
    ...(match[2] ? { password: decodeURIComponent(match[2]) } : {}),
    ...(kind === 'sentinel' ? { masterName: decodeURIComponent(match[4]!) } : {}),
    ...(match[5] ? { db: Number(match[5]) } : {}),
  };
}

/** The key prefix as used: in a cluster it must hold a hash tag, e.g. "{ocimirror}:". */
export function effectiveKeyPrefix(url: string, keyPrefix: string): string {
  return parseRedisTarget(url)?.kind === 'cluster' && !/\{[^}]+\}/.test(keyPrefix) ? `{${keyPrefix.replace(/:$/, '')}}:` : keyPrefix;
}

export function createRedisClient(url: string, options: RedisOptions): RedisClient {
  const target = parseRedisTarget(url);
  const keyPrefix = effectiveKeyPrefix(url, options.keyPrefix ?? '');
  if (!target) return new Redis(url, { ...options, keyPrefix });
  if (target.kind === 'sentinel') {
    return new Redis({
      ...options,
      keyPrefix,
      sentinels: target.nodes.map((n) => ({ host: n.host, port: n.port })),
      name: target.masterName!,
      ...(target.password ? { password: target.password } : {}),
      ...(target.db !== undefined ? { db: target.db } : {}),
    });
  }
  return new Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    { keyPrefix, enableOfflineQueue: options.enableOfflineQueue ?? true, redisOptions: { ...options, keyPrefix: undefined, ...(target.password ? { password: target.password } : {}) } },
  );
}
