// The one place that picks implementations: stores, upstream clients, caches, from the typed config.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { Authorizer } from './auth/authorizer.ts';
import type { AuthDeps } from './auth/gate.ts';
import { HtpasswdUsers } from './auth/htpasswd.ts';
import { hotPullCheck } from './auth/hot-pull.ts';
import { LoginLimiter } from './auth/rate-limit.ts';
import { ScopedTokens } from './auth/scoped-tokens.ts';
import { TokenService } from './auth/token-service.ts';
import type { AuthConfig, Config } from './config/config.ts';
import { parseListen } from './config/listen.ts';
import type { Logger } from './observability/logger.ts';
import type { Metrics } from './observability/metrics.ts';
import type { HostedDeps } from './hosted/deps.ts';
import type { CachedManifest, InflightBlob, ProxyDeps } from './mirror/deps.ts';
import { NamespaceResolver } from './namespaces/resolve.ts';
import type { RegistryDeps } from './routes/deps.ts';
import { HotManifests } from './routes/hot-manifests.ts';
import { LocalDownloadLocks, type DownloadLocks } from './store/download-locks.ts';
import { acquireLock } from './store/lock-file.ts';
import { GarbageCollector, type GcLock } from './gc/collector.ts';
import { RemovalQueue } from './cache/removal-queue.ts';
import { DiskBudget } from './gc/disk-budget.ts';
import { NegativeCache } from './mirror/negative-cache.ts';
import { Prefetcher } from './mirror/prefetch.ts';
import { prefetchBlob } from './mirror/pull-blob.ts';
import { SingleFlight } from './mirror/single-flight.ts';
import type { ReadinessCheck } from './routes/ops.ts';
import { DiskBlobStore } from './store/disk-blob-store.ts';
import { DiskHostedIndex } from './store/disk-hosted-index.ts';
import { EmbeddedMetadataStore } from './store/embedded-metadata-store.ts';
import type { MetadataStore } from './store/metadata-store.ts';
import type { BlobRedirects } from './store/blob-redirects.ts';
import type { BlobStore } from './store/blob-store.ts';
import type { PeerUploads } from './store/peer-uploads.ts';
import type { HostedIndex } from './store/hosted-index.ts';
import { StorageError } from './store/storage-error.ts';
import { viaHeader } from './upstream/loop.ts';
import { RegistryClient } from './upstream/registry-client.ts';
import { UpstreamTable } from './upstream/route.ts';
import { UpstreamHealthBoard } from './upstream/health.ts';
import { TrafficHistory } from './ui/traffic.ts';

export interface Runtime {
  /** The mirror's deps (tests and the admin API reach the stores through them). */
  readonly deps: ProxyDeps;
  /** What the registry's endpoints get: the resolver and both sources. */
  readonly registry: RegistryDeps;
  readonly readiness: readonly ReadinessCheck[];
  /** Resolves when no blob download is in progress. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Upload temp files younger than this may belong to another replica sharing the data dir. */
const SHARED_UPLOAD_GRACE_MS = 30 * 60_000;
/** A multipart upload in the bucket not in this replica's ledger may be another replica's: aborted only when this old. */
const S3_STALE_UPLOAD_MS = 24 * 3_600_000;

export async function createRuntime(config: Config, logger: Logger, metrics: Metrics): Promise<Runtime> {
  await mkdir(config.dataDir, { recursive: true });
  const { blobs, index, redirects, peers, check: checkStorage, close: closeStorage } = await openStorage(config, logger);

  let meta: MetadataStore;
  let locks: DownloadLocks = new LocalDownloadLocks();
  if (config.redis) {
    // Loaded only when configured: the Redis client costs start-up time and memory a single node never needs.
    const [{ RedisMetadataStore }, { RedisDownloadLocks }] = await Promise.all([
      import('./store/redis-metadata-store.ts'),
      import('./store/redis-download-locks.ts'),
    ]);
    const redis = await RedisMetadataStore.open({
      url: config.redis.url,
      keyPrefix: config.redis.keyPrefix,
      onError: (err) => {
        metrics.redisErrors.inc();
        logger.warn({ err: err.message }, 'redis connection error');
      },
    });
    meta = redis;
    // Replicas sharing the data dir download each blob once: the lease holder writes, the others follow.
    locks = new RedisDownloadLocks(redis.client);
  } else {
    meta = await EmbeddedMetadataStore.open(config.dataDir);
  }

  const table = new UpstreamTable(config.upstreams);
  // Marks this process's upstream requests, so a request that loops back to it is refused (loop.ts).
  const instanceId = randomBytes(6).toString('hex');
  const upstreamHealth = new UpstreamHealthBoard();
  const clientOptions = { timeouts: config.upstreamTimeouts, retries: config.upstreamRetries, metrics, userAgent: 'ocimirror', via: viaHeader(instanceId), health: upstreamHealth };
  const clients = new Map(config.upstreams.map((u) => [u.name, new RegistryClient(u, clientOptions)]));
  const downloads = new Map<string, InflightBlob>();
  const readers = new Map<string, number>();
  const inUse = (digest: string) => downloads.has(digest) || readers.has(digest);
  const budget = new DiskBudget({
    blobs,
    meta,
    maxBytes: config.cache.maxSizeBytes,
    lowWater: config.cache.lowWater,
    inUse,
    pinned: (digest) => index.isPinned(digest),
    metrics,
    logger,
  });
  void budget.start();
  const prefetch = new Prefetcher({
    download: (routed, digest) => prefetchBlob(deps, routed, digest),
    cacheBytes: () => budget.bytes,
    maxBytes: config.cache.maxSizeBytes,
    unusedAfterMs: config.cache.prefetchUnusedAfterMs,
    metrics,
    logger,
    now: Date.now,
  });
  const deps: ProxyDeps = {
    config,
    instanceId,
    table,
    clientFor: (name) => {
      const client = clients.get(name);
      if (!client) throw new Error(`no client for upstream ${name}`);
      return client;
    },
    blobs,
    meta,
    pins: index,
    manifests: new LRUCache<string, CachedManifest>({ max: Math.max(1, config.cache.manifestLruEntries) }),
    // Bounded by bytes: upstream tag lists can be megabytes each.
    tagLists: new LRUCache({ max: 1000, maxSize: 64 * 1024 * 1024, sizeCalculation: (entry) => Math.max(1, entry.body.byteLength) }),
    referrerLists: new LRUCache({ max: 1000, maxSize: 64 * 1024 * 1024, sizeCalculation: (entry) => Math.max(1, entry.body.byteLength) }),
    downloads,
    locks,
    readers,
    inUse,
    budget,
    negative: new NegativeCache(config.cache.negativeTtlMs),
    blobStarts: new SingleFlight<InflightBlob | undefined>(),
    manifestFetches: new SingleFlight<unknown>(),
    prefetch,
    metrics,
    logger,
    now: Date.now,
  };

  const hosted: HostedDeps = { index, blobs, usage: budget, metrics, logger, now: Date.now };
  const gc = new GarbageCollector(
    { index, blobs, meta, manifests: deps.manifests, budget, inUse, metrics, logger, now: Date.now },
    { lock: gcLock(config, locks), graceMs: config.gc.graceMs, deleteUntagged: config.gc.deleteUntagged },
  );
  gc.schedule(config.gc.intervalMs);
  const auth = config.auth ? await authDeps(config.auth, config.dataDir, logger) : undefined;
  if (auth) warnPlainBasic(config, logger);
  const traffic = new TrafficHistory(metrics);
  if (config.ui.enabled) traffic.start();
  // With client authentication on, every replayed answer first passes the gate's pull check.
  const hot = new HotManifests(deps, auth ? hotPullCheck(auth) : undefined);
  const registry: RegistryDeps = { resolver: new NamespaceResolver(table, config.hosted.namespaces), hosted, mirror: deps, gc, removals: new RemovalQueue(), traffic, upstreamHealth, hot, ...(redirects ? { redirects } : {}), ...(peers ? { peers } : {}), ...(auth ? { auth } : {}) };
  // Abandoned push uploads (a client that died mid-push) go after hosted.uploadTtl without a byte.
  const expireUploads = () =>
    blobs.expireSessions(config.hosted.uploadTtlMs).then(
      (count) => count && logger.info({ count }, 'removed abandoned upload sessions'),
      (err: unknown) => logger.warn({ err }, 'could not remove abandoned upload sessions'),
    );
  void expireUploads();
  const uploadSweeper = setInterval(expireUploads, Math.max(1_000, Math.min(config.hosted.uploadTtlMs / 4, 10 * 60_000)));
  uploadSweeper.unref();

  const readiness: ReadinessCheck[] = [
    {
      name: 'dataDir',
      check: async () => {
        const probe = join(config.dataDir, `.ready-${process.pid}`);
        await writeFile(probe, 'ok');
        await rm(probe, { force: true });
      },
    },
  ];
  if (config.redis) readiness.push({ name: 'redis', check: () => meta.ping() });
  if (checkStorage) readiness.push({ name: 'storage', check: checkStorage });

  return {
    deps,
    registry,
    readiness,
    idle: async () => {
      while (downloads.size > 0) await Promise.all([...downloads.values()].map((d) => d.finished));
    },
    close: async () => {
      prefetch.stop();
      clearInterval(uploadSweeper);
      traffic.close();
      await gc.close();
      await budget.settled();
      await Promise.all([...clients.values()].map((client) => client.close()));
      await meta.close();
      closeStorage();
    },
  };
}

interface Storage {
  readonly blobs: BlobStore;
  readonly index: HostedIndex;
  readonly redirects?: BlobRedirects;
  readonly peers?: PeerUploads;
  /** Readiness beyond the data dir's (the bucket answers). */
  readonly check?: () => Promise<void>;
  readonly close: () => void;
}

/** Blobs and the hosted index: in the data dir, or in the bucket of storage.s3 (the data dir is then scratch space). */
async function openStorage(config: Config, logger: Logger): Promise<Storage> {
  const s3 = config.storage.s3;
  if (!s3) {
    const blobs = new DiskBlobStore(join(config.dataDir, 'blobs'));
    const removed = await blobs.init({ removeUploadsOlderThanMs: config.redis ? SHARED_UPLOAD_GRACE_MS : 0 });
    if (removed) logger.info({ count: removed }, 'removed unfinished uploads left by an earlier run');
    // Hosted repositories' index: in the data dir whatever the metadata store, as hosted content is data.
    return { blobs, index: new DiskHostedIndex(join(config.dataDir, 'hosted')), close: () => {} };
  }
  // Loaded only when configured: the AWS SDK costs start-up time and memory a disk-only mirror never needs.
  const [{ S3BlobStore }, { S3HostedIndex }] = await Promise.all([import('./store/s3-blob-store.ts'), import('./store/s3-hosted-index.ts')]);
  const blobs = new S3BlobStore({
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    region: s3.region,
    bucket: s3.bucket,
    prefix: s3.prefix,
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials ? { accessKeyId: s3.credentials.accessKeyId.reveal(), secretAccessKey: s3.credentials.secretAccessKey.reveal() } : {}),
    scratchDir: join(config.dataDir, 's3-scratch'),
    ...(s3.peerUrl ? { peerUrl: s3.peerUrl } : {}),
  });
  try {
    // Multipart uploads this replica's earlier run left are aborted (its ledger); others' only once a day old.
    const aborted = await blobs.init({ staleUploadsMs: S3_STALE_UPLOAD_MS });
    if (aborted) logger.info({ count: aborted }, 'aborted multipart uploads left by an earlier run');
  } catch (err) {
    blobs.close();
    throw new StorageError(`storage.s3: cannot use bucket "${s3.bucket}"${s3.endpoint ? ` at ${s3.endpoint}` : ''}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ bucket: s3.bucket, prefix: s3.prefix, ...(s3.endpoint ? { endpoint: s3.endpoint } : {}) }, 'blobs and hosted index in an S3 bucket');
  const redirects = s3.redirect ? { urlFor: (digest: string) => blobs.redirectUrl(digest, s3.redirectTtlMs) } : undefined;
  return { blobs, index: new S3HostedIndex(blobs.bucket), ...(redirects ? { redirects } : {}), ...(s3.peerUrl ? { peers: blobs } : {}), check: () => blobs.check(), close: () => blobs.close() };
}

/**
 * Replicas on one bucket share no data dir: with Redis, their GC runs take a lease there (its name is no
 * digest, so no download's); otherwise a lock file in the data dir, which replicas on one volume share.
 */
function gcLock(config: Config, locks: DownloadLocks): GcLock {
  if (config.storage.s3 && config.redis) return () => locks.acquire('gc-run');
  const path = join(config.dataDir, 'gc.lock');
  return () => acquireLock(path);
}

async function authDeps(config: AuthConfig, dataDir: string, logger: Logger): Promise<AuthDeps> {
  return {
    config,
    users: config.htpasswdFile ? new HtpasswdUsers(config.htpasswdFile) : undefined,
    tokens: new ScopedTokens(dataDir),
    tokenService: await TokenService.open({ dataDir, service: config.service, ttlMs: config.tokenTtlMs }),
    authorizer: new Authorizer(config),
    limiter: new LoginLimiter({ perAddress: config.maxFailuresPerAddress, perUser: config.maxFailuresPerUser }),
    logger,
  };
}

/** Basic credentials cross plain HTTP to a listener other machines reach: say so once, at start. */
function warnPlainBasic(config: Config, logger: Logger): void {
  const exposed = config.listen.filter((text) => {
    try {
      const { host } = parseListen(text);
      return !(host === 'localhost' || host === '::1' || host.startsWith('127.'));
    } catch {
      return false;
    }
  });
  if (exposed.length) {
    logger.warn({ listen: exposed }, 'client authentication is on, but passwords and tokens cross plain HTTP on listeners other hosts can reach: put clients on the TLS listener (tls.listen) or behind a TLS proxy');
  }
}
