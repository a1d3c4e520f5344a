// /ui/warm: paste image references, watch them arrive. Each runs warm/warm-image.ts (what `ocimirror
// warm` runs) against this app in-process, as the visitor: what they may not pull they cannot warm.
// The page refreshes itself while a warm runs (a meta refresh: no script needed).
import { html } from 'hono/html';
import type { Principal } from '../auth/authorizer.ts';
import { imageList } from '../cli/warm.ts';
import { formatBytes } from '../cli/format.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { ImageRefError, parseImageRef, type ImageRef } from '../oci/image-ref.ts';
import { warmImage, type WarmedImage } from '../warm/warm-image.ts';
import type { UiAccess } from './access.ts';
import { visitorHeaders } from './as-visitor.ts';
import { csrfField, notice, page, type Html, type PageContext } from './layout.ts';

/** Jobs kept for the page (the oldest finished ones go first). */
const KEPT_JOBS = 50;
const MAX_IMAGES_PER_FORM = 50;
const PARALLEL_BLOBS = 4;

export interface WarmJob {
  readonly id: number;
  readonly image: string;
  /** Who started it (a user or token name), so each visitor sees their own. */
  readonly owner: string;
  state: 'running' | 'done' | 'failed';
  totalBytes: number;
  receivedBytes: number;
  blobs: number;
  blobsDone: number;
  result?: WarmedImage;
}

export class WarmJobs {
  readonly #jobs: WarmJob[] = [];
  #next = 1;

  add(image: string, owner: string): WarmJob {
    const job: WarmJob = { id: this.#next++, image, owner, state: 'running', totalBytes: 0, receivedBytes: 0, blobs: 0, blobsDone: 0 };
    this.#jobs.unshift(job);
    while (this.#jobs.length > KEPT_JOBS) {
      const finished = this.#jobs.findLastIndex((j) => j.state !== 'running');
      if (finished < 0) break;
      this.#jobs.splice(finished, 1);
    }
    return job;
  }

  of(owner: string): readonly WarmJob[] {
    return this.#jobs.filter((j) => j.owner === owner);
  }
}

export interface WarmStart {
  /** The mirror as the browser reached it (the jobs ask for this host, in-process). */
  readonly server: string;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
}

/** Starts a warm for each pasted reference the visitor may pull; says which were refused and why. */
export async function startWarms(registry: RegistryDeps, jobs: WarmJobs, access: UiAccess, text: string, start: WarmStart): Promise<string[]> {
  const lines = imageList(text);
  if (lines.length === 0) return ['Paste at least one image reference, one per line.'];
  if (lines.length > MAX_IMAGES_PER_FORM) return [`At most ${MAX_IMAGES_PER_FORM} images at once.`];
  const problems: string[] = [];
  const owner = ownerOf(access.principal);
  const fetched = new Set<string>();
  for (const line of lines) {
    let ref: ImageRef;
    try {
      ref = parseImageRef(line);
      const target = registry.resolver.resolve({ ns: ref.registry, name: ref.repository });
      if (!access.may(target, 'pull')) throw new ImageRefError(`${line}: you may not pull ${ref.repository}`);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
      continue;
    }
    const headers = await visitorHeaders(registry, access.principal, ref.repository);
    const job = jobs.add(line, owner);
    void warmImage({
      server: start.server,
      ref,
      name: line,
      parallel: PARALLEL_BLOBS,
      fetched,
      fetch: start.fetch,
      headers,
      progress: {
        start: (totalBytes, totalBlobs) => Object.assign(job, { totalBytes, blobs: totalBlobs }),
        bytes: (count) => void (job.receivedBytes += count),
        blobDone: () => void job.blobsDone++,
        finish: () => {},
      },
    }).then((result) => {
      job.result = result;
      job.state = result.ok ? 'done' : 'failed';
    });
  }
  return problems;
}

function ownerOf(principal: Principal): string {
  return principal.kind === 'anonymous' ? '' : `${principal.kind}:${principal.name}`;
}

export function warmPage(ctx: PageContext, jobs: WarmJobs, shown: { problems?: readonly string[]; text?: string } = {}): Html {
  const mine = jobs.of(ownerOf(ctx.access.principal));
  const running = mine.some((j) => j.state === 'running');
  return page(
    ctx,
    'Warm the cache',
    '/ui/warm',
    html`${(shown.problems ?? []).map((p) => notice('error', p))}
<form method="post" action="/ui/warm">${csrfField(ctx)}
<label for="images">Images, one per line (# comments)</label>
<textarea id="images" name="images" rows="6" cols="60" placeholder="alpine:3.20&#10;ghcr.io/org/app:v1">${shown.text ?? ''}</textarea>
<p><button type="submit" class="primary">Warm</button></p>
</form>
<h2>Warms</h2>
${
  mine.length === 0
    ? html`<p class="muted">None yet.</p>`
    : html`<table data-testid="warms"><thead><tr><th scope="col">Image</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Result</th></tr></thead><tbody>${mine.map(
        (j) => html`<tr data-state="${j.state}"><td>${j.image}</td><td>${j.state}</td><td>${j.blobs ? html`<progress max="${j.totalBytes || 1}" value="${j.receivedBytes}" aria-label="${`progress of ${j.image}`}"></progress> ${j.blobsDone} of ${j.blobs} blobs, ${formatBytes(j.receivedBytes)} of ${formatBytes(j.totalBytes)}` : j.state === 'running' ? 'reading manifests' : ''}</td><td>${
          j.result
            ? j.result.ok
              ? `${j.result.images} image manifest(s); blobs from cache ${j.result.blobs.cache.count}, from upstream ${j.result.blobs.upstream.count}`
              : (j.result.error ?? 'failed')
            : ''
        }</td></tr>`,
      )}</tbody></table>`
}`,
    running ? html`<meta http-equiv="refresh" content="2">` : undefined,
  );
}
