// prom-client's default process and Node.js metrics, all but nodejs_gc_duration_seconds. That one
// observes every garbage collection through a PerformanceObserver, and Node makes each collection a
// performance entry that outlives the next young collection: under 48k cached manifests per second
// (hundreds of young collections a second) V8's old generation grew ~1.5 MB/s more, which was ~25 MB
// of peak RSS before the next full collection (bench/scratch measurements, 2026-12-03). GC pauses
// still show as event-loop lag (nodejs_eventloop_lag_seconds).
//
// prom-client's collectDefaultMetrics has no way to leave one out, so its per-metric modules (the
// list of lib/defaultMetrics.js in prom-client 15) are called here one by one.
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

type DefaultMetric = (registry: Registry, config: { readonly eventLoopMonitoringPrecision: number }) => void;

const DEFAULT_METRICS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
] as const;

/** Registers the process and Node.js metrics on `registry` (collectDefaultMetrics' config defaults). */
export function collectProcessMetrics(registry: Registry): void {
  const load = createRequire(import.meta.url);
  for (const name of DEFAULT_METRICS) (load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(registry, { eventLoopMonitoringPrecision: 10 });
}
