// /ui/gc (admins): garbage collection, as a dry run or for real, with what it found.
import { html } from 'hono/html';
import { formatBytes } from '../cli/format.ts';
import { csrfField, notice, page, type Html, type PageContext } from './layout.ts';

export function gcPage(ctx: PageContext, result?: { report?: unknown; error?: string }): Html {
  return page(
    ctx,
    'Garbage collection',
    '/ui/gc',
    html`${notice('error', result?.error)}
<p>Frees blobs and manifests nothing references: no hosted tag, hosted manifest or cached tag reaches them.</p>
<form method="post" action="/ui/gc" class="inline">${csrfField(ctx)}<input type="hidden" name="dryRun" value="1"><button type="submit">Dry run</button></form>
<form method="post" action="/ui/gc" class="inline" data-confirm="Run garbage collection now?">${csrfField(ctx)}<button type="submit" class="danger">Run garbage collection</button></form>
${result?.report !== undefined ? report(result.report) : ''}`,
  );
}

function report(value: unknown): Html {
  const r = (value ?? {}) as { dryRun?: boolean; freedBytes?: unknown };
  return html`<h2>${r.dryRun ? 'Dry run: what would be freed' : 'Freed'}</h2>
${typeof r.freedBytes === 'number' ? html`<p data-testid="gc-freed">${formatBytes(r.freedBytes)}</p>` : ''}
<pre>${JSON.stringify(value, null, 2)}</pre>`;
}
