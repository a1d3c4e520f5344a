// The dashboard (GET /): does the mirror pay off? Cache size against cache.maxSize, hosted bytes, hit
// ratio and bytes from cache vs upstream over the last hour and day, each upstream's health, and the
// downloads in progress.
import { html } from 'hono/html';
import { formatBytes, formatTime, shortDigest } from '../cli/format.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { trafficChart } from './charts.ts';
import { page, type Html, type PageContext } from './layout.ts';

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;

export async function dashboardPage(registry: RegistryDeps, ctx: PageContext): Promise<Html> {
  const deps = registry.mirror;
  const traffic = registry.traffic;
  const [hour, day, hourBuckets, dayBuckets] = await Promise.all([traffic.window(HOUR_MS), traffic.window(DAY_MS), traffic.buckets(HOUR_MS, 60), traffic.buckets(DAY_MS, 96)]);
  const max = deps.config.cache.maxSizeBytes;
  const used = deps.budget.bytes;
  const ratio = (r: number | undefined) => (r === undefined ? '–' : `${Math.round(r * 100)} %`);
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const downloads = [...deps.downloads.values()];
  return page(
    ctx,
    'Dashboard',
    '/',
    html`<section aria-labelledby="usage"><h2 id="usage">Storage and traffic</h2>
<div class="cards">
<div class="card"><div class="label">Cache size</div><div class="value" data-testid="cache-size">${formatBytes(used)}</div>
<div class="muted">${max ? html`of ${formatBytes(max)} (cache.maxSize)` : 'no limit (cache.maxSize unset)'}</div>
${max ? html`<svg class="meter" width="100%" height="10" role="img" aria-label="${`${Math.round((used / max) * 100)} % of cache.maxSize used`}"><rect width="100%" height="10" fill="#e6e9ed"></rect><rect width="${Math.min(100, (used / max) * 100).toFixed(1)}%" height="10" fill="#0b5cad"></rect></svg>` : ''}</div>
<div class="card"><div class="label">Hosted (pushed) content</div><div class="value">${formatBytes(deps.budget.hostedBytes)}</div><div class="muted">never evicted</div></div>
<div class="card"><div class="label">Hit ratio, last hour</div><div class="value" data-testid="hit-ratio-hour">${ratio(hour.hitRatio)}</div><div class="muted">${hour.hits} hits, ${hour.misses} misses (manifests and blobs)</div></div>
<div class="card"><div class="label">Hit ratio, last day</div><div class="value" data-testid="hit-ratio-day">${ratio(day.hitRatio)}</div><div class="muted">${day.hits} hits, ${day.misses} misses</div></div>
<div class="card"><div class="label">Served, last day</div><div class="value">${formatBytes(day.bytes.cache)}</div><div class="muted">from cache; ${formatBytes(day.bytes.upstream)} from upstream, ${formatBytes(day.bytes.hosted)} hosted</div></div>
</div>
<div class="charts">
${trafficChart('Last hour (per minute)', hourBuckets, clock)}
${trafficChart('Last day (per 15 minutes)', dayBuckets, clock)}
</div>
<p class="muted">Kept in this process since its start (times in UTC); Prometheus (/metrics) keeps the long history.</p>
</section>
<section aria-labelledby="upstreams"><h2 id="upstreams">Upstreams</h2>
<table data-testid="upstream-health"><thead><tr><th scope="col">Upstream</th><th scope="col">URL</th><th scope="col">Last success</th><th scope="col">Last error</th><th scope="col" class="num">Latency (last / average)</th><th scope="col">Rate limit remaining</th></tr></thead>
<tbody>${deps.config.upstreams.map((u) => {
      const h = registry.upstreamHealth.of(u.name);
      const ms = (v: number | undefined) => (v === undefined ? '–' : `${Math.round(v)} ms`);
      return html`<tr><td>${u.name}</td><td><code>${u.url}</code></td><td>${h.lastSuccess ? formatTime(h.lastSuccess) : 'none yet'}</td><td>${h.lastError ? html`${formatTime(h.lastError.at)}<br><span class="muted">${h.lastError.message}</span>` : 'none'}</td><td class="num">${ms(h.lastLatencyMs)} / ${ms(h.averageLatencyMs)}</td><td>${h.rateLimit ? `${h.rateLimit.remaining}${h.rateLimit.windowSeconds ? ` per ${Math.round(h.rateLimit.windowSeconds / 3600)} h` : ''} (${formatTime(h.rateLimit.at)})` : '–'}</td></tr>`;
    })}</tbody></table>
</section>
<section aria-labelledby="downloads"><h2 id="downloads">Downloads in progress</h2>
${
  downloads.length === 0
    ? html`<p class="muted">None.</p>`
    : html`<table><thead><tr><th scope="col">Blob</th><th scope="col" class="num">Received</th><th scope="col">Progress</th></tr></thead><tbody>${downloads.map(
        (d) =>
          html`<tr><td><code>${shortDigest(d.digest)}</code></td><td class="num">${formatBytes(d.written)}${d.size ? html` of ${formatBytes(d.size)}` : ''}</td><td>${d.size ? html`<progress max="${d.size}" value="${d.written}" aria-label="${`download of ${shortDigest(d.digest)}`}"></progress>` : 'size unknown'}</td></tr>`,
      )}</tbody></table>`
}
</section>`,
  );
}
