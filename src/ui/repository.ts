// GET /ui/repository?name=<name>[&tag=]: tags with digest, size, platforms, pushed or cached time and
// last pull; pull commands for the chosen tag; delete a hosted tag, drop a cached one.
import { html } from 'hono/html';
import { formatBytes, formatTime, manifestKind, shortDigest } from '../cli/format.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { csrfField, notice, page, type Html, type PageContext } from './layout.ts';
import { pullCommands } from './pull-commands.ts';
import { repositoryTags } from './repository-tags.ts';

export interface RepositoryView {
  readonly name: string;
  readonly target: Target;
  readonly tag?: string;
  /** Where the commands point: the Host the browser used. */
  readonly host: string;
  readonly plainHttp: boolean;
  readonly message?: { kind: 'ok' | 'error'; text: string };
}

export async function repositoryPage(registry: RegistryDeps, ctx: PageContext, view: RepositoryView): Promise<Html> {
  const rows = await repositoryTags(registry, view.target);
  const chosen = rows.find((r) => r.tag === view.tag) ?? rows[0];
  const imageLink = (ref: string) => `/ui/image?${new URLSearchParams({ name: view.name, ref })}`;
  const mayDelete = (source: string) => (source === 'cached' ? ctx.access.admin : ctx.access.may(view.target, 'delete'));
  return page(
    ctx,
    view.name,
    '/ui/repositories',
    html`${view.message ? notice(view.message.kind, view.message.text) : ''}
<p class="muted">${view.target.kind === 'hosted' ? 'Hosted repository (pushed content, never evicted).' : html`Mirrored from ${view.target.routed.upstream.name} (<code>${view.target.routed.repo}</code>).`}</p>
${
  rows.length === 0
    ? html`<p>No tags.</p>`
    : html`<h2>Tags</h2>
<table><thead><tr><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Kind</th><th scope="col">Platforms</th><th scope="col" class="num">Size</th><th scope="col">Pushed / cached</th><th scope="col">Last pull</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows.map(
        (r) => html`<tr data-tag="${r.tag}"><td><a href="${imageLink(r.tag)}">${r.tag}</a></td><td><code title="${r.digest}">${shortDigest(r.digest)}</code></td><td>${manifestKind(r.mediaType)}${r.source === 'hosted' ? '' : html`, ${r.source === 'override' ? 'pushed override' : 'cached'}`}</td><td>${r.platforms.join(', ') || '–'}</td><td class="num">${formatBytes(r.sizeBytes)}</td><td>${formatTime(r.at)}</td><td>${formatTime(r.lastPull)}</td>
<td><a href="${`/ui/repository?${new URLSearchParams({ name: view.name, tag: r.tag })}#pull`}" aria-label="${`pull commands for ${r.tag}`}">Pull</a>
${
  mayDelete(r.source)
    ? html` <form method="post" action="/ui/repository/delete-tag" class="inline" data-confirm="${r.source === 'cached' ? `Drop the cached tag ${r.tag}? Its blobs no other image uses are freed.` : `Delete the tag ${r.tag}?`}">${csrfField(ctx)}<input type="hidden" name="name" value="${view.name}"><input type="hidden" name="tag" value="${r.tag}"><input type="hidden" name="source" value="${r.source}"><button type="submit" class="danger" aria-label="${`${r.source === 'cached' ? 'Drop cached tag' : 'Delete tag'} ${r.tag}`}">${r.source === 'cached' ? 'Drop' : 'Delete'}</button></form>`
    : ''
}</td></tr>`,
      )}</tbody></table>`
}
${chosen ? commands(view, chosen.tag) : ''}`,
  );
}

function commands(view: RepositoryView, tag: string): Html {
  const list = pullCommands(view.host, `${view.name}:${tag}`, view.plainHttp);
  return html`<h2 id="pull">Pull ${view.name}:${tag}</h2>
<table class="commands"><tbody>${list.map(
    (c, i) => html`<tr><th scope="row">${c.client}</th><td><code id="${`cmd-${i}`}" data-client="${c.client}">${c.command}</code></td><td><button type="button" data-copy="${`cmd-${i}`}" aria-label="${`Copy the ${c.client} command`}">Copy</button></td></tr>`,
  )}</tbody></table>`;
}
