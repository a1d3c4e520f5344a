// GET /ui/image?name=<name>&ref=<tag|digest>[&platform=os/arch]: an index's platforms; an image's
// layers with sizes and its config as `skopeo inspect --config` shows it (env, cmd, entrypoint, labels,
// history); referrers (signatures, SBOMs), asked of the registry API in-process as the visitor.
import { html } from 'hono/html';
import { formatBytes, manifestKind, shortDigest } from '../cli/format.ts';
import { inspectImage, type ImageInspection } from '../cache/inspect.ts';
import type { Target } from '../namespaces/resolve.ts';
import { looksLikeDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { page, type Html, type PageContext } from './layout.ts';

interface ImageConfig {
  config?: { Env?: unknown; Cmd?: unknown; Entrypoint?: unknown; WorkingDir?: unknown; User?: unknown; Labels?: unknown; ExposedPorts?: unknown };
  history?: unknown;
}

export interface Referrer {
  readonly digest: string;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly size?: number;
}

export interface ImageView {
  readonly name: string;
  readonly target: Target;
  readonly ref: string;
  readonly platform?: string;
  /** The registry API's referrers of a digest (undefined: it could not answer). */
  readonly referrers: (digest: string) => Promise<readonly Referrer[] | undefined>;
}

export async function imagePage(registry: RegistryDeps, ctx: PageContext, view: ImageView): Promise<Html> {
  const deps = registry.mirror;
  const key = view.target.kind === 'hosted' ? view.target.key : view.target.override;
  // A hosted tag names a manifest in the hosted index; a cached tag one in the cache's metadata.
  let reference = view.ref;
  if (!looksLikeDigest(reference) && key) reference = (await registry.hosted.index.getTag(key, reference)) ?? reference;
  const where = view.target.kind === 'mirrored' && reference === view.ref ? { upstream: view.target.routed.upstream.name, repo: view.target.routed.repo } : { upstream: 'hosted', repo: key ?? '' };
  if (where.upstream === 'hosted' && !looksLikeDigest(reference)) throw new OciError('MANIFEST_UNKNOWN', 'no such tag', { detail: { name: view.name, tag: view.ref.slice(0, 128) } });
  const inspected = await inspectImage(deps, { ...where, reference }, view.platform ? { platform: view.platform } : {});
  const referrers = await view.referrers(inspected.digest);
  const link = (params: Record<string, string>) => `/ui/image?${new URLSearchParams({ name: view.name, ...params })}`;
  return page(
    ctx,
    `${view.name}${looksLikeDigest(view.ref) ? `@${shortDigest(view.ref)}` : `:${view.ref}`}`,
    '/ui/repositories',
    html`<p><a href="${`/ui/repository?${new URLSearchParams({ name: view.name })}`}">Back to ${view.name}</a></p>
<table><tbody>
<tr><th scope="row">Digest</th><td><code data-testid="image-digest">${inspected.digest}</code></td></tr>
<tr><th scope="row">Media type</th><td>${manifestKind(inspected.mediaType)} <span class="muted">(${inspected.mediaType})</span></td></tr>
<tr><th scope="row">Manifest size</th><td>${formatBytes(inspected.size)}</td></tr>
${inspected.platform ? html`<tr><th scope="row">Platform</th><td>${[inspected.platform.os, inspected.platform.architecture, inspected.platform.variant].filter(Boolean).join('/')}</td></tr>` : ''}
${inspected.created ? html`<tr><th scope="row">Created</th><td>${inspected.created}</td></tr>` : ''}
</tbody></table>
${inspected.platforms ? platforms(inspected, (platform) => link({ ref: inspected.digest, platform })) : ''}
${inspected.layers ? layers(inspected) : ''}
${inspected.config !== undefined ? config(inspected.config as ImageConfig) : inspected.configDescriptor ? html`<h2>Config</h2><p class="muted">The config blob is not cached yet.</p>` : ''}
${
  referrers === undefined
    ? html`<h2>Referrers</h2><p class="muted">The registry could not list this image's referrers now.</p>`
    : referrers.length
      ? html`<h2>Referrers</h2><table data-testid="referrers"><thead><tr><th scope="col">Digest</th><th scope="col">Artifact type</th><th scope="col" class="num">Size</th></tr></thead><tbody>${referrers.map(
          (r) => html`<tr><td><a href="${link({ ref: r.digest })}"><code>${shortDigest(r.digest)}</code></a></td><td>${r.artifactType ?? r.mediaType ?? ''}</td><td class="num">${r.size === undefined ? '' : formatBytes(r.size)}</td></tr>`,
        )}</tbody></table>`
      : ''
}`,
  );
}

function platforms(inspected: ImageInspection, href: (platform: string) => string): Html {
  return html`<h2>Platforms</h2>
<table><thead><tr><th scope="col">Platform</th><th scope="col">Digest</th><th scope="col" class="num">Size</th><th scope="col">Cached</th></tr></thead><tbody>${inspected.platforms!.map((p) => {
    const text = [p.platform?.os, p.platform?.architecture, p.platform?.variant].filter(Boolean).join('/') || 'unknown';
    return html`<tr><td>${p.platform?.os && p.platform.architecture ? html`<a href="${href(text)}">${text}</a>` : text}</td><td><code>${shortDigest(p.digest)}</code></td><td class="num">${formatBytes(p.size)}</td><td>${p.held ? 'yes' : 'no'}</td></tr>`;
  })}</tbody></table>`;
}

function layers(inspected: ImageInspection): Html {
  const total = inspected.layers!.reduce((s, l) => s + l.size, 0);
  return html`<h2>Layers</h2>
<table data-testid="layers"><thead><tr><th scope="col">#</th><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col" class="num">Size</th><th scope="col">Cached</th></tr></thead><tbody>${inspected.layers!.map(
    (l, i) => html`<tr><td>${i + 1}</td><td><code data-digest="${l.digest}">${l.digest}</code></td><td>${l.mediaType}</td><td class="num">${formatBytes(l.size)}</td><td>${l.held ? 'yes' : 'no'}</td></tr>`,
  )}</tbody><tfoot><tr><th scope="row" colspan="3">Total</th><td class="num">${formatBytes(total)}</td><td></td></tr></tfoot></table>`;
}

function config(document: ImageConfig): Html {
  const c = document.config ?? {};
  const list = (value: unknown) => (Array.isArray(value) ? value.map(String) : []);
  const labels = c.Labels && typeof c.Labels === 'object' ? Object.entries(c.Labels as Record<string, unknown>) : [];
  const history = Array.isArray(document.history) ? (document.history as { created?: unknown; created_by?: unknown; comment?: unknown; empty_layer?: unknown }[]) : [];
  return html`<h2>Config</h2>
<table data-testid="config"><tbody>
<tr><th scope="row">Entrypoint</th><td><code>${JSON.stringify(list(c.Entrypoint))}</code></td></tr>
<tr><th scope="row">Cmd</th><td><code>${JSON.stringify(list(c.Cmd))}</code></td></tr>
<tr><th scope="row">Working dir</th><td><code>${typeof c.WorkingDir === 'string' ? c.WorkingDir : ''}</code></td></tr>
<tr><th scope="row">User</th><td><code>${typeof c.User === 'string' ? c.User : ''}</code></td></tr>
<tr><th scope="row">Env</th><td>${list(c.Env).map((e) => html`<code>${e}</code><br>`)}</td></tr>
<tr><th scope="row">Labels</th><td>${labels.map(([k, v]) => html`<code>${k}=${String(v)}</code><br>`)}</td></tr>
</tbody></table>
${
  history.length
    ? html`<h3>History</h3><table><thead><tr><th scope="col">Created</th><th scope="col">Created by</th><th scope="col">Empty layer</th></tr></thead><tbody>${history.map(
        (h) => html`<tr><td>${typeof h.created === 'string' ? h.created : ''}</td><td><code>${typeof h.created_by === 'string' ? h.created_by : ''}</code>${typeof h.comment === 'string' && h.comment ? html` <span class="muted">${h.comment}</span>` : ''}</td><td>${h.empty_layer === true ? 'yes' : ''}</td></tr>`,
      )}</tbody></table>`
    : ''
}
<details><summary>The config document</summary><pre>${JSON.stringify(document, null, 2)}</pre></details>`;
}
