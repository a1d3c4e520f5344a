// Metadata in Redis, shared by every replica:
//   tags:<upstream>|<repo>   hash  "<tag>|<accept class>" -> TagRecord JSON
//   repos                    set   "<upstream>|<repo>" with at least one cached tag
//   manifest:<digest>        string ManifestRecord JSON
//   blob-access              zset  digest scored by last access (ms)
//   blob-size                hash  digest -> size
import { createRedisClient, type RedisClient } from './redis-connection.ts';
import type { BlobRecord, ManifestRecord, MetadataStore, RepoRef, TagKey, TagRecord } from './metadata-store.ts';

const DELETE_TAG = `
for _, field in ipairs(redis.call('hkeys', KEYS[1])) do
  if string.sub(field, 1, string.len(ARGV[1])) == ARGV[1] then redis.call('hdel', KEYS[1], field) end
end
if redis.call('hlen', KEYS[1]) == 0 then redis.call('srem', KEYS[2], ARGV[2]) end
return 1`;

/** Redis answers in well under a millisecond; two seconds of silence means it is not answering. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;

export interface RedisMetadataOptions {
  readonly url: string;
  readonly keyPrefix: string;
  /** How long open() waits for the first connection before going on degraded. */
  readonly connectTimeoutMs?: number;
  /** How long a command may go unanswered before it fails (a frozen server, a partition). */
  readonly commandTimeoutMs?: number;
  readonly onError?: (err: Error) => void;
}

export class RedisMetadataStore implements MetadataStore {
  readonly #redis: RedisClient;

  private constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  static async open(options: RedisMetadataOptions): Promise<RedisMetadataStore> {
    const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const redis = createRedisClient(options.url, {
      keyPrefix: options.keyPrefix,
      // Fail commands fast while Redis is away: callers treat that as a cache miss, not a hang.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      // A Redis that hangs (stopped, partitioned) accepts commands and never answers. Each command
      // fails after commandTimeout, and the silent connection is dropped after socketTimeout, so the
      // commands that follow fail at once (offline queue off) until a reconnect gets a ready answer.
      commandTimeout: commandTimeoutMs,
      socketTimeout: commandTimeoutMs,
      keepAlive: 10_000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    redis.on('error', (err: Error) => options.onError?.(err));
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, options.connectTimeoutMs ?? 5_000);
      redis.once('ready', done);
    });
    return new RedisMetadataStore(redis);
  }

  /** The client, for features built on the same connection (locks, pub/sub). */
  get client(): RedisClient {
    return this.#redis;
  }

  async getTag(key: TagKey): Promise<TagRecord | undefined> {
    return parse<TagRecord>(await this.#redis.hget(tagsKey(key.upstream, key.repo), `${key.tag}|${key.accept}`));
  }

  async setTag(key: TagKey, record: TagRecord): Promise<void> {
    await this.#redis
      .multi()
      .hset(tagsKey(key.upstream, key.repo), `${key.tag}|${key.accept}`, JSON.stringify(record))
      .sadd('repos', `${key.upstream}|${key.repo}`)
      .exec();
  }

  async deleteTag(upstream: string, repo: string, tag: string): Promise<void> {
    // One script, so a setTag landing in between cannot leave a repository with tags out of `repos`.
    await this.#redis.eval(DELETE_TAG, 2, tagsKey(upstream, repo), 'repos', `${tag}|`, `${upstream}|${repo}`);
  }

  async listTags(upstream: string, repo: string): Promise<string[]> {
    const fields = await this.#redis.hkeys(tagsKey(upstream, repo));
    return [...new Set(fields.map((f) => f.slice(0, f.lastIndexOf('|'))))].sort();
  }

  async tagRecords(upstream: string, repo: string): Promise<(TagRecord & { tag: string; accept: string })[]> {
    const all = await this.#redis.hgetall(tagsKey(upstream, repo));
    return Object.entries(all)
      .map(([field, json]) => {
        const at = field.lastIndexOf('|');
        return { ...(JSON.parse(json) as TagRecord), tag: field.slice(0, at), accept: field.slice(at + 1) };
      })
      .sort((a, b) => a.tag.localeCompare(b.tag) || a.accept.localeCompare(b.accept));
  }

  async listRepos(): Promise<RepoRef[]> {
    const members = await this.#redis.smembers('repos');
    return members
      .map((m) => {
        const at = m.indexOf('|');
        return { upstream: m.slice(0, at), repo: m.slice(at + 1) };
      })
      .sort((a, b) => a.upstream.localeCompare(b.upstream) || a.repo.localeCompare(b.repo));
  }

  async getManifest(digest: string): Promise<ManifestRecord | undefined> {
    return parse<ManifestRecord>(await this.#redis.get(`manifest:${digest}`));
  }

  async setManifest(digest: string, record: ManifestRecord): Promise<void> {
    await this.#redis.set(`manifest:${digest}`, JSON.stringify(record));
  }

  async touchBlob(digest: string, size: number, at: number): Promise<void> {
    await this.#redis.multi().zadd('blob-access', at, digest).hset('blob-size', digest, size).exec();
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const [access, size] = await Promise.all([this.#redis.zscore('blob-access', digest), this.#redis.hget('blob-size', digest)]);
    return access === null || size === null ? undefined : { size: Number(size), lastAccess: Number(access) };
  }

  async blobsByAge(limit: number): Promise<(BlobRecord & { digest: string })[]> {
    if (limit <= 0) return []; // ZRANGE 0 -1 would mean "all"
    const flat = await this.#redis.zrange('blob-access', 0, limit - 1, 'WITHSCORES');
    const digests = flat.filter((_, i) => i % 2 === 0);
    const sizes = digests.length ? await this.#redis.hmget('blob-size', ...digests) : [];
    return digests.map((digest, i) => ({ digest, lastAccess: Number(flat[i * 2 + 1]), size: Number(sizes[i] ?? 0) }));
  }

  async forgetBlob(digest: string): Promise<void> {
    await this.#redis.multi().zrem('blob-access', digest).hdel('blob-size', digest).exec();
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

function tagsKey(upstream: string, repo: string): string {
  return `tags:${upstream}|${repo}`;
}

function parse<T>(text: string | null): T | undefined {
  return text === null ? undefined : (JSON.parse(text) as T);
}
