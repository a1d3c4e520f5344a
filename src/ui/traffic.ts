// The short history the dashboard's charts need (the last day), kept in the process: every SAMPLE_MS
// the metrics' running totals (cache lookups, bytes served by source) are copied into
// a ring. Windows and chart buckets are differences of totals, so a missed sample only coarsens a chart.
// Prometheus stays the long-term store; this is what a browser shows without one.
import type { Metrics } from '../observability/metrics.ts';

const SAMPLE_MS = 10_000;
const DAY_MS = 24 * 60 * 60_000;

export interface Totals {
  readonly at: number;
  readonly hits: number;
  readonly misses: number;
  readonly bytes: { readonly cache: number; readonly upstream: number; readonly hosted: number };
}

export interface Window {
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); undefined when nothing was looked up. */
  readonly hitRatio: number | undefined;
  readonly bytes: Totals['bytes'];
}

export class TrafficHistory {
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #ring: Totals[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(metrics: Metrics, now: () => number = Date.now) {
    this.#metrics = metrics;
    this.#now = now;
  }

  start(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** The totals now (not only at the last sample: a pull a second ago shows). */
  async current(): Promise<Totals> {
    const m = this.#metrics;
    const [lookups, served] = await Promise.all([m.cacheLookups.get(), m.servedBytes.get()]);
    let hits = 0;
    let misses = 0;
    for (const v of lookups.values) {
      if (v.labels.kind !== 'manifest' && v.labels.kind !== 'blob') continue;
      if (v.labels.result === 'hit') hits += v.value;
      else if (v.labels.result === 'miss' || v.labels.result === 'stale') misses += v.value;
    }
    const bytes = { cache: 0, upstream: 0, hosted: 0 };
    for (const v of served.values) {
      const source = v.labels.source;
      if (source === 'cache' || source === 'upstream' || source === 'hosted') bytes[source] += v.value;
    }
    return { at: this.#now(), hits, misses, bytes };
  }

  /** What happened over the last `ms` (or since start, when the process is younger). */
  async window(ms: number): Promise<Window> {
    const now = await this.current();
    const then = this.#at(now.at - ms) ?? zero(now.at);
    const hits = now.hits - then.hits;
    const misses = now.misses - then.misses;
    return {
      hits,
      misses,
      hitRatio: hits + misses > 0 ? hits / (hits + misses) : undefined,
      bytes: { cache: now.bytes.cache - then.bytes.cache, upstream: now.bytes.upstream - then.bytes.upstream, hosted: now.bytes.hosted - then.bytes.hosted },
    };
  }

  /** `count` buckets covering the last `ms`, oldest first: what each served from cache and from upstream, and its hit ratio. */
  async buckets(ms: number, count: number): Promise<{ start: number; cacheBytes: number; upstreamBytes: number; hitRatio: number | undefined }[]> {
    const now = await this.current();
    const step = ms / count;
    const at = (t: number) => (t >= now.at ? now : (this.#at(t) ?? zero(t)));
    const out = [];
    for (let i = 0; i < count; i++) {
      const start = now.at - ms + i * step;
      const a = at(start);
      const b = at(start + step);
      const hits = b.hits - a.hits;
      const misses = b.misses - a.misses;
      out.push({ start, cacheBytes: b.bytes.cache - a.bytes.cache, upstreamBytes: b.bytes.upstream - a.bytes.upstream, hitRatio: hits + misses > 0 ? hits / (hits + misses) : undefined });
    }
    return out;
  }

  /** Copies the totals into the ring (every SAMPLE_MS once started). */
  async sample(): Promise<void> {
    // The first sample is the process's start: totals were zero before it.
    if (this.#ring.length === 0) this.#ring.push(zero(this.#now()));
    this.#ring.push(await this.current());
    const oldest = this.#now() - DAY_MS - SAMPLE_MS;
    while (this.#ring.length > 2 && this.#ring[1]!.at < oldest) this.#ring.shift();
  }

  /** The latest sample at or before `t`. */
  #at(t: number): Totals | undefined {
    let lo = 0;
    let hi = this.#ring.length - 1;
    let found: Totals | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ring[mid]!.at <= t) {
        found = this.#ring[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

function zero(at: number): Totals {
  return { at, hits: 0, misses: 0, bytes: { cache: 0, upstream: 0, hosted: 0 } };
}
