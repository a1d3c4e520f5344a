// Download leases in Redis: SET NX with expiry, renewed while the download runs, released only by the
// owner (compare-and-delete), so a crashed replica's lease simply runs out.
import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis-connection.ts';
import type { DownloadLease, DownloadLocks, InflightUpload } from './download-locks.ts';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[2]) return redis.call('del', KEYS[1]) end return 0`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[2], ARGV[2]) return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;

export class RedisDownloadLocks implements DownloadLocks {
  readonly #redis: RedisClient;
  readonly #ttlMs: number;

  constructor(redis: RedisClient, options: { ttlMs?: number } = {}) {
    this.#redis = redis;
    this.#ttlMs = options.ttlMs ?? 30_000;
  }

  async acquire(digest: string): Promise<DownloadLease | undefined> {
    const owner = randomBytes(12).toString('hex');
    const keys = [`lock:${digest}`, `inflight:${digest}`];
    const ok = await this.#redis.set(keys[0]!, owner, 'PX', this.#ttlMs, 'NX');
    if (ok !== 'OK') return undefined;
    const renew = setInterval(() => {
      void this.#redis.eval(RENEW, 2, ...keys, owner, this.#ttlMs).catch(() => {});
    }, this.#ttlMs / 3).unref();
    return {
      publish: async (upload: InflightUpload) => {
        await this.#redis.set(keys[1]!, JSON.stringify(upload), 'PX', this.#ttlMs);
      },
      release: async () => {
        clearInterval(renew);
        await this.#redis.eval(RELEASE, 2, ...keys, owner).catch(() => {});
      },
    };
  }

  async inflight(digest: string): Promise<InflightUpload | undefined> {
    const text = await this.#redis.get(`inflight:${digest}`);
    return text ? (JSON.parse(text) as InflightUpload) : undefined;
  }

  async held(digest: string): Promise<boolean> {
    return (await this.#redis.exists(`lock:${digest}`)) === 1;
  }
}
