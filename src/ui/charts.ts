// Charts drawn on the server as inline SVG (no script, no library): bars of bytes from cache and from
// upstream per interval, and a line of the hit ratio. Presentation attributes only, as the CSP allows no
// inline style.
import { html } from 'hono/html';
import { formatBytes } from '../cli/format.ts';
import type { Html } from './layout.ts';

export interface Bucket {
  readonly start: number;
  readonly cacheBytes: number;
  readonly upstreamBytes: number;
  readonly hitRatio: number | undefined;
}

const W = 480;
const H = 160;
const PAD = { left: 56, right: 8, top: 8, bottom: 22 };

export function trafficChart(title: string, buckets: readonly Bucket[], label: (start: number) => string): Html {
  const max = Math.max(1, ...buckets.map((b) => b.cacheBytes + b.upstreamBytes));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(1, buckets.length);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const bars = buckets.map((b, i) => {
    const x = PAD.left + i * bw;
    const cacheTop = y(b.cacheBytes);
    const upTop = y(b.cacheBytes + b.upstreamBytes);
    return html`<rect x="${x.toFixed(1)}" y="${cacheTop.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(PAD.top + plotH - cacheTop).toFixed(1)}" fill="#1a7f37"></rect><rect x="${x.toFixed(1)}" y="${upTop.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(cacheTop - upTop).toFixed(1)}" fill="#bc4c00"></rect>`;
  });
  const points = buckets.flatMap((b, i) => (b.hitRatio === undefined ? [] : [`${(PAD.left + i * bw + bw / 2).toFixed(1)},${(PAD.top + plotH - b.hitRatio * plotH).toFixed(1)}`]));
  const total = buckets.reduce((s, b) => ({ cache: s.cache + b.cacheBytes, upstream: s.upstream + b.upstreamBytes }), { cache: 0, upstream: 0 });
  const description = `${formatBytes(total.cache)} served from cache and ${formatBytes(total.upstream)} from upstream over this period; the line is the hit ratio (0 to 100 %).`;
  const ticks = [0, Math.floor(buckets.length / 2), buckets.length - 1].filter((i, k, all) => i >= 0 && all.indexOf(i) === k);
  return html`<figure>
<figcaption>${title}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${`${title}: ${description}`}">
<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${W - PAD.right}" y2="${PAD.top + plotH}" stroke="#57606a"></line>
<text x="${PAD.left - 4}" y="${PAD.top + 10}" text-anchor="end" font-size="10" fill="#57606a">${formatBytes(max)}</text>
<text x="${PAD.left - 4}" y="${PAD.top + plotH}" text-anchor="end" font-size="10" fill="#57606a">0</text>
${bars}
${points.length > 1 ? html`<polyline points="${points.join(' ')}" fill="none" stroke="#0b5cad" stroke-width="2"></polyline>` : ''}
${ticks.map((i, k) => html`<text x="${(PAD.left + (k === ticks.length - 1 ? (i + 1) * bw : k === 0 ? 0 : (i + 0.5) * bw)).toFixed(1)}" y="${H - 6}" text-anchor="${k === ticks.length - 1 ? 'end' : k === 0 ? 'start' : 'middle'}" font-size="10" fill="#57606a">${label(buckets[i]!.start)}</text>`)}
${points.length === 1 ? html`<circle cx="${points[0]!.split(',')[0]}" cy="${points[0]!.split(',')[1]}" r="3" fill="#0b5cad"></circle>` : ''}
</svg>
<div class="legend"><span class="swatch cache"></span>from cache <span class="swatch upstream"></span>from upstream <span class="swatch ratio"></span>hit ratio</div>
</figure>`;
}
