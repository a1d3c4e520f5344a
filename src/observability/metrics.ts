// Every metric the mirror exports, declared in one place (Prometheus naming: ocimirror_ prefix, base
// units, _total counters; labels are route templates and upstream names, never repos, tags or digests).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics.ts';

export function createMetrics(version: string) {
  const registry = new Registry();
  collectProcessMetrics(registry);
  // prom-client names three gauges *_total, which Prometheus' naming rules (and promtool) reserve for
  // counters; the per-type nodejs_active_handles/requests/resources gauges carry the same information.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const r = [registry];

  const metrics = {
    registry,
    buildInfo: new Gauge({ name: 'ocimirror_build_info', help: 'Build information; always 1.', labelNames: ['version', 'node'], registers: r }),
    httpRequests: new Counter({ name: 'ocimirror_http_requests_total', help: 'HTTP requests answered, by route template, method and status code.', labelNames: ['route', 'method', 'code'], registers: r }),
    httpDuration: new Histogram({
      name: 'ocimirror_http_request_duration_seconds',
      help: 'Time to answer HTTP requests (until the body was sent), by route template and method.',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: r,
    }),
    cacheLookups: new Counter({ name: 'ocimirror_cache_lookups_total', help: 'Cache lookups by kind (manifest, blob, tag, tags_list, referrers) and result (hit, miss, stale, negative).', labelNames: ['kind', 'result'], registers: r }),
    servedBytes: new Counter({ name: 'ocimirror_served_bytes_total', help: 'Body bytes sent to clients, by source (cache, upstream, hosted).', labelNames: ['source'], registers: r }),
    upstreamRequests: new Counter({ name: 'ocimirror_upstream_requests_total', help: 'Requests sent to upstream registries, by upstream and status code (0 = no answer).', labelNames: ['upstream', 'code'], registers: r }),
    upstreamErrors: new Counter({ name: 'ocimirror_upstream_errors_total', help: 'Failed upstream exchanges, by upstream and reason.', labelNames: ['upstream', 'reason'], registers: r }),
    upstreamDuration: new Histogram({
      name: 'ocimirror_upstream_request_duration_seconds',
      help: 'Time until an upstream answered with headers, by upstream.',
      labelNames: ['upstream'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    upstreamBytes: new Counter({ name: 'ocimirror_upstream_received_bytes_total', help: 'Body bytes received from upstream registries, by upstream.', labelNames: ['upstream'], registers: r }),
    tokenFetches: new Counter({ name: 'ocimirror_token_fetches_total', help: 'Bearer token requests to upstream auth servers, by upstream and result.', labelNames: ['upstream', 'result'], registers: r }),
    inflightDownloads: new Gauge({ name: 'ocimirror_inflight_downloads', help: 'Blob downloads from upstream in progress.', registers: r }),
    coalescedRequests: new Counter({ name: 'ocimirror_coalesced_requests_total', help: 'Requests that joined a download already in progress instead of going upstream.', registers: r }),
    prefetchStarted: new Counter({ name: 'ocimirror_prefetch_started_total', help: 'Blob downloads started by layer prefetch (a manifest fetched for a client) before any client asked for them, by upstream.', labelNames: ['upstream'], registers: r }),
    prefetchNeverRequested: new Counter({ name: 'ocimirror_prefetch_never_requested_total', help: 'Prefetched blobs no client asked for within cache.prefetchUnusedAfter, by upstream.', labelNames: ['upstream'], registers: r }),
    prefetchSkipped: new Counter({ name: 'ocimirror_prefetch_skipped_total', help: 'Blobs layer prefetch left to the clients, by upstream and reason (budget: the download would push the cache past cache.maxSize; failed: the download did not start).', labelNames: ['upstream', 'reason'], registers: r }),
    blobStoreBytes: new Gauge({ name: 'ocimirror_blob_store_size_bytes', help: 'Bytes of cached (mirrored) content in the local blob store: what cache.maxSize bounds.', registers: r }),
    blobStoreObjects: new Gauge({ name: 'ocimirror_blob_store_objects', help: 'Cached (mirrored) blobs and manifests in the local blob store.', registers: r }),
    hostedBytes: new Gauge({ name: 'ocimirror_hosted_size_bytes', help: 'Bytes of content that hosted repositories or overrides hold (never evicted).', registers: r }),
    hostedObjects: new Gauge({ name: 'ocimirror_hosted_objects', help: 'Blobs and manifests that hosted repositories or overrides hold.', registers: r }),
    hostedPushedBytes: new Counter({ name: 'ocimirror_hosted_pushed_bytes_total', help: 'Blob bytes pushed into hosted repositories and overrides.', registers: r }),
    evictions: new Counter({ name: 'ocimirror_evictions_total', help: 'Blobs evicted to stay within the disk budget.', registers: r }),
    evictedBytes: new Counter({ name: 'ocimirror_evicted_bytes_total', help: 'Bytes evicted to stay within the disk budget.', registers: r }),
    gcRuns: new Counter({ name: 'ocimirror_gc_runs_total', help: 'Garbage collection runs, by result (done, dry_run, failed, busy: another replica was running one).', labelNames: ['result'], registers: r }),
    gcFreedObjects: new Counter({ name: 'ocimirror_gc_freed_objects_total', help: 'Blobs and manifests garbage collection deleted from the store.', registers: r }),
    gcFreedBytes: new Counter({ name: 'ocimirror_gc_freed_bytes_total', help: 'Bytes garbage collection deleted from the store.', registers: r }),
    gcLastRun: new Gauge({ name: 'ocimirror_gc_last_run_timestamp_seconds', help: 'When the last garbage collection run (not a dry run) finished.', registers: r }),
    redisErrors: new Counter({ name: 'ocimirror_redis_errors_total', help: 'Redis commands or connections that failed.', registers: r }),
  };
  metrics.buildInfo.set({ version, node: process.version }, 1);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
