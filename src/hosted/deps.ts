// What the hosted-repository logic needs (and nothing of the mirror's).
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { HostedIndex } from '../store/hosted-index.ts';

/** Keeps hosted bytes apart from cache bytes in the disk budget (gc/disk-budget.ts). */
export interface HostedUsage {
  /** Content of `size` bytes became hosted; `wasCached`: the store already held it as cache. */
  pinned(size: number, wasCached: boolean): void;
}

export interface HostedDeps {
  readonly index: HostedIndex;
  readonly blobs: BlobStore;
  readonly usage: HostedUsage;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
}
