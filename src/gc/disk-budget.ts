// Keeps the cached part of the local blob store within `cache.maxSize`: when a new blob pushes it over,
// least recently used blobs are deleted until it is under the low-water mark. A blob being read or
// downloaded is never chosen, nor content that hosted repositories hold (pinned): that is data, counted
// apart from the cache and never evicted. Manifests that reference an evicted blob stay valid: the blob is simply fetched again.
// Eviction runs in the background, one pass at a time, so requests never wait for it.
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { MetadataStore } from '../store/metadata-store.ts';

export interface DiskBudgetOptions {
  readonly blobs: BlobStore;
  readonly meta: MetadataStore;
  /** Undefined: no limit (sizes are still tracked for metrics). */
  readonly maxBytes: number | undefined;
  /** Fraction of maxBytes an eviction pass brings the store down to. */
  readonly lowWater: number;
  readonly inUse: (digest: string) => boolean;
  /** Content hosted repositories hold: never evicted, not counted as cache. */
  readonly pinned: (digest: string) => Promise<boolean>;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

const BATCH = 256;

export class DiskBudget {
  readonly #o: DiskBudgetOptions;
  #bytes = 0;
  #objects = 0;
  #hostedBytes = 0;
  #hostedObjects = 0;
  #pass?: Promise<void>;
  #scanned: Promise<void> = Promise.resolve();

  constructor(options: DiskBudgetOptions) {
    this.#o = options;
  }

  /** Bytes of cached content. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of hosted content. */
  get hostedBytes(): number {
    return this.#hostedBytes;
  }

  /** Counts what is on disk (in the background) and makes blobs unknown to the metadata store evictable. */
  start(): Promise<void> {
    this.#scanned = (async () => {
      let bytes = 0;
      let objects = 0;
      for await (const blob of this.#o.blobs.list()) {
        if (await this.#o.pinned(blob.digest)) {
          this.#hostedBytes += blob.size;
          this.#hostedObjects++;
          continue;
        }
        bytes += blob.size;
        objects++;
        const known = await this.#o.meta.getBlob(blob.digest).catch(() => undefined);
        if (!known) await this.#o.meta.touchBlob(blob.digest, blob.size, 0).catch(() => {});
      }
      this.#bytes += bytes;
      this.#objects += objects;
      this.#publish();
      this.#maybeEvict();
    })().catch((err: unknown) => this.#o.logger.warn({ err }, 'could not scan the blob store'));
    return this.#scanned;
  }

  /** A blob or manifest of this size was added to the store. */
  added(size: number): void {
    this.#bytes += size;
    this.#objects++;
    this.#publish();
    this.#maybeEvict();
  }

  /** Content of this size became hosted; `wasCached`: until now it was counted as cache. */
  pinned(size: number, wasCached: boolean): void {
    this.#hostedBytes += size;
    this.#hostedObjects++;
    if (wasCached) {
      this.#bytes = Math.max(0, this.#bytes - size);
      this.#objects = Math.max(0, this.#objects - 1);
    }
    this.#publish();
  }

  /** Hosted content of this size is no longer pinned: `deleted` from the store, or cache from now on. */
  unpinned(size: number, deleted: boolean): void {
    this.#hostedBytes = Math.max(0, this.#hostedBytes - size);
    this.#hostedObjects = Math.max(0, this.#hostedObjects - 1);
    if (!deleted) {
      this.#bytes += size;
      this.#objects++;
    }
    this.#publish();
  }

  /** A blob or manifest of this size was deleted outside an eviction pass (`ocimirror rm`). */
  removed(size: number): void {
    this.#bytes = Math.max(0, this.#bytes - size);
    this.#objects = Math.max(0, this.#objects - 1);
    this.#publish();
  }

  /** Resolves when no eviction pass is running. */
  async settled(): Promise<void> {
    await this.#scanned;
    while (this.#pass) await this.#pass;
  }

  #publish(): void {
    this.#o.metrics.blobStoreBytes.set(this.#bytes);
    this.#o.metrics.blobStoreObjects.set(this.#objects);
    this.#o.metrics.hostedBytes.set(this.#hostedBytes);
    this.#o.metrics.hostedObjects.set(this.#hostedObjects);
  }

  #maybeEvict(): void {
    const max = this.#o.maxBytes;
    if (max === undefined || this.#bytes <= max || this.#pass) return;
    this.#pass = this.#evict(Math.floor(max * this.#o.lowWater))
      .catch((err: unknown) => this.#o.logger.warn({ err }, 'eviction pass failed'))
      .finally(() => {
        this.#pass = undefined;
        // Blobs added during the pass may have pushed the store over again.
        this.#maybeEvict();
      });
  }

  async #evict(target: number): Promise<void> {
    let limit = BATCH;
    const started = this.#bytes;
    while (this.#bytes > target) {
      const candidates = await this.#o.meta.blobsByAge(limit);
      let progress = false;
      for (const candidate of candidates) {
        if (this.#bytes <= target) break;
        if (this.#o.inUse(candidate.digest) || (await this.#o.pinned(candidate.digest))) continue;
        const held = await this.#o.blobs.stat(candidate.digest);
        await this.#o.meta.forgetBlob(candidate.digest);
        progress = true;
        if (!held) continue;
        // A push may pin the blob while we delete it: the store checks again before the bytes go.
        if (!(await this.#o.blobs.delete(candidate.digest, () => this.#o.pinned(candidate.digest)))) continue;
        this.#bytes -= held.size;
        this.#objects--;
        this.#o.metrics.evictions.inc();
        this.#o.metrics.evictedBytes.inc(held.size);
      }
      this.#publish();
      if (candidates.length < limit && !progress) break; // everything left is in use or untracked
      if (!progress) limit *= 2;
    }
    this.#o.logger.info({ before_bytes: started, after_bytes: this.#bytes, target_bytes: target }, 'evicted least recently used blobs');
  }
}
