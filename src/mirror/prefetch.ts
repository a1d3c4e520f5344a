// Layer prefetch: once the mirror fetched an image manifest from upstream for a client's GET, the config
// and layers it does not hold start downloading at once, a bounded number per upstream, so the client's
// blob requests (containerd asks for 3 at a time) join downloads already under way instead of each
// waiting its turn. containerd HEADs the tag and then GETs the manifest by digest, which the HEAD's fetch
// already cached: a HEAD that fetched a manifest arms its prefetch, and a GET of that digest starts it.
// A client that never asks for the blobs (`skopeo inspect`) costs the downloads it started: counted as
// prefetched but never requested once `cache.prefetchUnusedAfter` passed without a request.
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { summarizeManifest, type Descriptor } from '../oci/manifest.ts';
import { isIndexType } from '../oci/media-types.ts';
import type { Routed } from '../upstream/route.ts';
import type { CachedManifest } from './deps.ts';
import type { InflightBlob } from './inflight-blob.ts';

export interface PrefetcherOptions {
  /** Starts downloading a blob nobody asked for yet; undefined when there is nothing to do. */
  readonly download: (routed: Routed, digest: string) => Promise<InflightBlob | undefined>;
  /** Bytes of cached content in the store now. */
  readonly cacheBytes: () => number;
  /** cache.maxSize: prefetch never pushes the store past it (undefined: no limit). */
  readonly maxBytes: number | undefined;
  readonly unusedAfterMs: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
}

/** How the manifest reached the client. */
export interface ManifestServed {
  readonly head: boolean;
  /** Fetched from upstream for this request (not answered from the cache). */
  readonly fetched: boolean;
}

interface Job {
  readonly routed: Routed;
  readonly blob: Descriptor;
}

interface Queue {
  running: number;
  readonly waiting: Job[];
}

interface Prefetched {
  readonly upstream: string;
  readonly at: number;
  download?: InflightBlob;
}

/** A HEAD's fetch arms the GET by digest that containerd sends right after; later ones are other pulls. */
const ARMED_MS = 60_000;
/** Bounds the armed set against a flood of HEADs of distinct manifests. */
const MAX_ARMED = 10_000;

export class Prefetcher {
  readonly #o: PrefetcherOptions;
  readonly #queues = new Map<string, Queue>();
  /** Manifests a HEAD fetched, by digest: their upstream route and when. */
  readonly #armed = new Map<string, { routed: Routed; at: number }>();
  /** Blobs prefetch is downloading or downloaded that no client asked for yet. */
  readonly #unrequested = new Map<string, Prefetched>();
  #pendingBytes = 0;
  #stopped = false;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: PrefetcherOptions) {
    this.#o = options;
    const every = Math.max(100, Math.min(options.unusedAfterMs, ARMED_MS) / 2);
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref();
  }

  /** A manifest answered a client from the mirror's upstream route `routed`. */
  manifestServed(routed: Routed, manifest: CachedManifest, how: ManifestServed): void {
    if (this.#stopped || !routed.upstream.prefetch || isIndexType(manifest.record.mediaType)) return;
    if (how.head) {
      if (!how.fetched) return;
      if (this.#armed.size >= MAX_ARMED) this.#armed.delete(this.#armed.keys().next().value!);
      this.#armed.set(manifest.digest, { routed, at: this.#o.now() });
      return;
    }
    const armed = this.#armed.get(manifest.digest);
    if (armed) this.#armed.delete(manifest.digest);
    if (how.fetched || armed) this.#enqueue(routed, manifest);
  }

  /**
   * A client asked for this blob (GET or HEAD). True for the first request of a blob prefetch downloaded
   * for it: its bytes came from the upstream for this pull, even when they are on disk by now. False
   * while prefetch is still looking (the blob may be stored already: then nothing is downloaded).
   */
  requested(digest: string): boolean {
    const entry = this.#unrequested.get(digest);
    this.#unrequested.delete(digest);
    return entry?.download !== undefined;
  }

  /** No new downloads; running ones that no client asked for are broken off (nothing of them is cached). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    for (const queue of this.#queues.values()) queue.waiting.length = 0;
    this.#armed.clear();
    for (const entry of this.#unrequested.values()) entry.download?.cancel();
  }

  #enqueue(routed: Routed, manifest: CachedManifest): void {
    let blobs: Descriptor[];
    try {
      const summary = summarizeManifest(manifest.body);
      blobs = [...(summary.config ? [summary.config] : []), ...summary.layers];
    } catch {
      return; // the client gets the manifest as it is; nothing to prefetch from it
    }
    const name = routed.upstream.name;
    let queue = this.#queues.get(name);
    if (!queue) this.#queues.set(name, (queue = { running: 0, waiting: [] }));
    // Foreign (non-distributable) layers live elsewhere: the upstream does not serve them.
    for (const blob of blobs) if (!/nondistributable|foreign/.test(blob.mediaType)) queue.waiting.push({ routed, blob });
    this.#drain(queue, routed.upstream.prefetchConcurrency);
  }

  #drain(queue: Queue, concurrency: number): void {
    while (!this.#stopped && queue.running < concurrency && queue.waiting.length > 0) {
      const job = queue.waiting.shift()!;
      queue.running++;
      void this.#run(job).finally(() => {
        queue.running--;
        this.#drain(queue, concurrency);
      });
    }
  }

  async #run({ routed, blob }: Job): Promise<void> {
    const upstream = routed.upstream.name;
    const max = this.#o.maxBytes;
    const size = Number.isSafeInteger(blob.size) && blob.size > 0 ? blob.size : 0;
    if (max !== undefined && this.#o.cacheBytes() + this.#pendingBytes + size > max) {
      this.#o.metrics.prefetchSkipped.inc({ upstream, reason: 'budget' });
      return;
    }
    // Recorded before the download starts: a client asking meanwhile takes it off the list.
    const entry: Prefetched = { upstream, at: this.#o.now() };
    this.#unrequested.set(blob.digest, entry);
    this.#pendingBytes += size;
    try {
      const download = await this.#o.download(routed, blob.digest);
      if (!download) {
        if (this.#unrequested.get(blob.digest) === entry) this.#unrequested.delete(blob.digest);
        return;
      }
      entry.download = download;
      this.#o.metrics.prefetchStarted.inc({ upstream });
      if (this.#stopped && this.#unrequested.get(blob.digest) === entry) download.cancel();
      await download.finished;
    } catch (err) {
      if (this.#unrequested.get(blob.digest) === entry) this.#unrequested.delete(blob.digest);
      this.#o.metrics.prefetchSkipped.inc({ upstream, reason: 'failed' });
      this.#o.logger.debug({ upstream, repo: routed.repo, digest: blob.digest, err }, 'prefetch could not start a download');
    } finally {
      this.#pendingBytes -= size;
    }
  }

  #sweep(): void {
    const now = this.#o.now();
    for (const [digest, entry] of this.#unrequested) {
      if (now - entry.at < this.#o.unusedAfterMs) continue;
      this.#unrequested.delete(digest);
      this.#o.metrics.prefetchNeverRequested.inc({ upstream: entry.upstream });
    }
    for (const [digest, armed] of this.#armed) if (now - armed.at >= ARMED_MS) this.#armed.delete(digest);
  }
}
