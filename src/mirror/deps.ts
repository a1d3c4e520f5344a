// What the pull logic needs, as one object built at start-up (see src/deps.ts).
import type { LRUCache } from 'lru-cache';
import type { Config } from '../config/config.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { HostedIndex } from '../store/hosted-index.ts';
import type { ManifestRecord, MetadataStore } from '../store/metadata-store.ts';
import type { RegistryClient } from '../upstream/registry-client.ts';
import type { UpstreamTable } from '../upstream/route.ts';
import type { DownloadLocks } from '../store/download-locks.ts';
import type { InflightBlob } from './inflight-blob.ts';
import type { DiskBudget } from '../gc/disk-budget.ts';
import type { NegativeCache } from './negative-cache.ts';
import type { Prefetcher } from './prefetch.ts';
import type { SingleFlight } from './single-flight.ts';

export interface CachedManifest {
  readonly digest: string;
  readonly record: ManifestRecord;
  readonly body: Uint8Array;
}

export type { InflightBlob };

export interface ProxyDeps {
  readonly config: Config;
  /** Random per process: marks its upstream requests (Via) so it can refuse its own (upstream/loop.ts). */
  readonly instanceId: string;
  readonly table: UpstreamTable;
  readonly clientFor: (upstream: string) => RegistryClient;
  readonly blobs: BlobStore;
  readonly meta: MetadataStore;
  /** Which content hosted repositories hold (see hosted-guard.ts). */
  readonly pins: Pick<HostedIndex, 'isPinned'>;
  /** Hot manifests by digest, in front of the stores. */
  readonly manifests: LRUCache<string, CachedManifest>;
  /** Short-lived tags/list answers by upstream+repo+query. */
  readonly tagLists: LRUCache<string, { body: Uint8Array; link?: string; fetchedAt: number }>;
  /** Referrers answers (an OCI index body) by upstream+repo+subject digest, reused within the tag TTL. */
  readonly referrerLists: LRUCache<string, { body: Uint8Array; fetchedAt: number }>;
  /** Blobs arriving now: downloaded by this process, or by another one sharing the data dir. */
  readonly downloads: Map<string, InflightBlob>;
  readonly locks: DownloadLocks;
  /** Open read streams of stored blobs, by digest: such blobs are not evicted. */
  readonly readers: Map<string, number>;
  /** Whether a blob is being downloaded or read now: eviction and `rm` pass it by. */
  readonly inUse: (digest: string) => boolean;
  readonly budget: DiskBudget;
  /** Recent upstream 404s. */
  readonly negative: NegativeCache;
  readonly blobStarts: SingleFlight<InflightBlob | undefined>;
  readonly manifestFetches: SingleFlight<unknown>;
  /** Downloads an image's blobs once its manifest was fetched for a client, before the client asks. */
  readonly prefetch: Prefetcher;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
}
