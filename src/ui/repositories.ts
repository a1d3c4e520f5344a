// GET /ui/repositories[?q=&page=]: hosted and mirrored repositories grouped by upstream, searchable, paged.
import { html } from 'hono/html';
import { formatBytes, formatTime } from '../cli/format.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { catalogPage } from './catalog.ts';
import { page, type Html, type PageContext } from './layout.ts';

export async function repositoriesPage(registry: RegistryDeps, ctx: PageContext, query: { search: string; page: number }): Promise<Html> {
  const listing = await catalogPage(registry, ctx.access, query);
  const link = (p: number) => `/ui/repositories?${new URLSearchParams({ ...(query.search ? { q: query.search } : {}), page: String(p) })}`;
  const groups: string[] = [];
  for (const e of listing.entries) if (groups[groups.length - 1] !== e.group) groups.push(e.group);
  return page(
    ctx,
    'Repositories',
    '/ui/repositories',
    html`<form method="get" action="/ui/repositories" role="search">
<label for="q">Search repositories</label>
<input type="search" id="q" name="q" value="${query.search}" placeholder="e.g. alpine">
<button type="submit">Search</button>
</form>
<p class="muted" data-testid="repository-count">${listing.total} ${listing.total === 1 ? 'repository' : 'repositories'}${query.search ? html` matching “${query.search}”` : ''}</p>
${groups.map(
  (group) => html`<h2>${group === 'hosted' ? 'Hosted' : html`Mirrored from ${group}`}</h2>
<table><thead><tr><th scope="col">Repository</th><th scope="col">Kind</th><th scope="col" class="num">Tags</th><th scope="col" class="num">Size</th><th scope="col">Last pull</th></tr></thead>
<tbody>${listing.entries
    .filter((e) => e.group === group)
    .map(
      (e) =>
        html`<tr><td><a href="${`/ui/repository?${new URLSearchParams({ name: e.name })}`}">${e.name}</a></td><td>${e.kind === 'override' ? 'pushed override' : e.kind}</td><td class="num">${e.tags}</td><td class="num">${formatBytes(e.sizeBytes)}</td><td>${formatTime(e.lastAccess)}</td></tr>`,
    )}</tbody></table>`,
)}
<nav class="pager" aria-label="Pages">
${listing.page > 1 ? html`<a href="${link(listing.page - 1)}" rel="prev">Previous page</a>` : ''}
<span>Page ${listing.page} of ${listing.pages}</span>
${listing.page < listing.pages ? html`<a href="${link(listing.page + 1)}" rel="next">Next page</a>` : ''}
</nav>`,
  );
}
