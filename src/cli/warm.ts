// `ocimirror warm <image>...`: pulls images through the mirror's public registry API, exactly as a
// client would, so every platform manifest, config and layer ends up in its cache. Blob bodies are
// streamed and dropped (constant memory). The mirror's X-Ocimirror-Cache header on each answer tells
// whether it came from the cache or the upstream.
import { readFile } from 'node:fs/promises';
import { text as readStdin } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { ImageRefError, parseImageRef, referenceOf, type ImageRef } from '../oci/image-ref.ts';
import { MAX_MANIFEST_BYTES, resolveManifestMediaType, summarizeManifest, type Descriptor } from '../oci/manifest.ts';
import { MANIFEST_TYPES, bareMediaType, isIndexType } from '../oci/media-types.ts';
import { ConfigError } from '../config/load.ts';
import { DEFAULT_SERVER_URL, serverUrl } from './endpoints.ts';
import { formatBytes, shortDigest } from './format.ts';
import { createProgress, type ImageProgress } from './progress.ts';

export const WARM_USAGE = `Usage: ocimirror warm <image>... [options]

Pulls each image through the running mirror (every platform of a multi-arch image, every config and
layer) so later pulls are served from its cache. Images: alpine:3.20, docker.io/library/alpine:3.20,
ghcr.io/org/app:v1, registry.k8s.io/pause:3.9, name@sha256:... An image naming a registry is asked for
with ?ns=<registry> (the mirror needs an upstream for it); one naming none goes to the default upstream.

Options:
  -f, --file FILE       read images from FILE, one per line, # comments (repeatable; - for stdin)
  -s, --server URL      the mirror (default: see --config, else $OCIMIRROR_SERVER, else
                        $OCIMIRROR_CONFIG's listen, else ${DEFAULT_SERVER_URL})
  -c, --config FILE     the mirror's config file: the mirror is at its first listen address
  -j, --parallel N      blobs fetched at once per image (default 4)
      --json            print the summary as JSON

Progress goes to stderr (a bar per image on a terminal), the summary to stdout. Exit code 1 when any
image failed.`;

const MANIFEST_ACCEPT = MANIFEST_TYPES.join(', ');
const MANIFEST_TIMEOUT_MS = 120_000;

type Source = 'cache' | 'upstream';

interface Tally {
  count: number;
  bytes: number;
}

export interface WarmedImage {
  readonly image: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly digest?: string;
  readonly mediaType?: string;
  /** Image manifests (platforms, plus attestations and other artifacts an index lists). */
  readonly images: number;
  readonly manifests: Record<Source, Tally>;
  readonly blobs: Record<Source, Tally>;
  /** Blobs this image shares with an image warmed earlier in the same run (fetched once). */
  readonly alreadyFetched: number;
  readonly durationMs: number;
}

export async function warmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string', short: 'f', multiple: true },
      server: { type: 'string', short: 's' },
      config: { type: 'string', short: 'c' },
      parallel: { type: 'string', short: 'j' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(WARM_USAGE);
    return 0;
  }
  const parallel = Number(values.parallel ?? 4);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
    console.error('ocimirror warm: --parallel must be a whole number from 1 to 64');
    return 2;
  }
  const texts = [...positionals];
  for (const file of values.file ?? []) {
    try {
      texts.push(...imageList(file === '-' ? await readStdin(process.stdin) : await readFile(file, 'utf8')));
    } catch (err) {
      console.error(`ocimirror warm: cannot read ${file}: ${(err as Error).message}`);
      return 1;
    }
  }
  if (texts.length === 0) {
    console.error(`ocimirror warm: give at least one image\n\n${WARM_USAGE}`);
    return 2;
  }
  const refs: { text: string; ref: ImageRef }[] = [];
  const bad: string[] = [];
  for (const text of texts) {
    try {
      refs.push({ text, ref: parseImageRef(text) });
    } catch (err) {
      if (!(err instanceof ImageRefError)) throw err;
      bad.push(err.message);
    }
  }
  if (bad.length) {
    for (const message of bad) console.error(`ocimirror warm: ${message}`);
    return 1;
  }

  let server: string;
  try {
    server = serverUrl({ url: values.server, config: values.config });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`ocimirror warm: ${err.message}`);
    return 2;
  }
  const progress = createProgress(process.stderr);
  const fetched = new Set<string>();
  const started = Date.now();
  const results: WarmedImage[] = [];
  for (const { text, ref } of refs) {
    const result = await warmImage({ server, ref, name: text, parallel, fetched, progress: progress.image(text) });
    results.push(result);
  }
  const summary = summarize(results, Date.now() - started);
  console.log(values.json ? JSON.stringify({ ...summary, images: results }, null, 2) : summaryText(summary, server));
  return summary.failed > 0 ? 1 : 0;
}

/** Image references from a list file: one per line; blank lines and # comments are skipped. */
export function imageList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

interface WarmTask {
  readonly server: string;
  readonly ref: ImageRef;
  readonly name: string;
  readonly parallel: number;
  /** Blob digests fetched earlier in this run. */
  readonly fetched: Set<string>;
  readonly progress: ImageProgress;
}

async function warmImage(task: WarmTask): Promise<WarmedImage> {
  const { ref, progress } = task;
  const started = Date.now();
  const manifests: Record<Source, Tally> = { cache: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  const blobs: Record<Source, Tally> = { cache: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  let alreadyFetched = 0;
  let images = 0;
  let root: FetchedManifest | undefined;
  try {
    // Walk the manifests first (small), so the bar knows the total before the first layer.
    root = await getManifest(task.server, ref, referenceOf(ref));
    const wanted = new Map<string, Descriptor>();
    const seen = new Set<string>();
    let level: FetchedManifest[] = [root];
    while (level.length > 0) {
      const children: string[] = [];
      for (const m of level) {
        seen.add(m.digest);
        tally(manifests[m.source], m.body.byteLength);
        const summary = summarizeManifest(m.body);
        if (isIndexType(resolveManifestMediaType(m.mediaType, summary) ?? '')) {
          for (const child of summary.manifests) if (!seen.has(child.digest)) children.push(child.digest);
          continue;
        }
        images++;
        for (const d of [summary.config, ...summary.layers]) {
          // Foreign layers (Windows base images) carry URLs and are not in any registry.
          if (d && !(d as { urls?: unknown }).urls) wanted.set(d.digest, d);
        }
      }
      const unique = [...new Set(children)].filter((d) => !seen.has(d));
      level = [];
      await pool(unique, task.parallel, async (digest) => {
        level.push(await getManifest(task.server, ref, digest));
      });
    }
    const todo = [...wanted.values()].filter((d) => {
      if (!task.fetched.has(d.digest)) return true;
      alreadyFetched++;
      return false;
    });
    progress.start(
      todo.reduce((sum, d) => sum + d.size, 0),
      todo.length,
    );
    await pool(todo, task.parallel, async (d) => {
      const source = await getBlob(task.server, ref, d, (count) => progress.bytes(count));
      task.fetched.add(d.digest);
      tally(blobs[source], d.size);
      progress.blobDone();
    });
    const result: WarmedImage = { image: task.name, ok: true, digest: root.digest, mediaType: root.mediaType, images, manifests, blobs, alreadyFetched, durationMs: Date.now() - started };
    progress.finish(imageLine(result), true);
    return result;
  } catch (err) {
    const result: WarmedImage = {
      image: task.name,
      ok: false,
      error: (err as Error).message,
      ...(root ? { digest: root.digest, mediaType: root.mediaType } : {}),
      images,
      manifests,
      blobs,
      alreadyFetched,
      durationMs: Date.now() - started,
    };
    progress.finish(`${task.name}: FAILED: ${result.error}`, false);
    return result;
  }
}

interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Uint8Array;
  readonly source: Source;
}

/** The path and query under which the mirror serves `ref`'s repository. */
function repoUrl(server: string, ref: ImageRef, tail: string): string {
  const ns = ref.registry ? `?ns=${encodeURIComponent(ref.registry)}` : '';
  return `${server}/v2/${ref.repository}/${tail}${ns}`;
}

async function getManifest(server: string, ref: ImageRef, reference: string): Promise<FetchedManifest> {
  const url = repoUrl(server, ref, `manifests/${reference}`);
  const res = await request(url, { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(MANIFEST_TIMEOUT_MS) }, server);
  if (!res.ok) throw await answerError(res, `manifest ${reference}`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength > MAX_MANIFEST_BYTES) throw new Error(`manifest ${reference} is over ${MAX_MANIFEST_BYTES} bytes`);
  const digest = res.headers.get('docker-content-digest') ?? digestOf(body);
  if (digestOf(body, parseDigest(digest).algorithm) !== digest || (reference.includes(':') && reference !== digest)) {
    throw new Error(`manifest ${reference}: the body does not match digest ${digest}`);
  }
  return { digest, mediaType: bareMediaType(res.headers.get('content-type')), body, source: sourceOf(res) };
}

async function getBlob(server: string, ref: ImageRef, d: Descriptor, onBytes: (count: number) => void): Promise<Source> {
  const res = await request(repoUrl(server, ref, `blobs/${d.digest}`), {}, server);
  if (!res.ok || !res.body) throw await answerError(res, `blob ${shortDigest(d.digest)}`);
  let received = 0;
  try {
    for await (const chunk of res.body) {
      received += (chunk as Uint8Array).byteLength;
      onBytes((chunk as Uint8Array).byteLength);
    }
  } catch (err) {
    throw new Error(`blob ${shortDigest(d.digest)}: transfer broke off after ${received} bytes (${(err as Error).message})`, { cause: err });
  }
  if (received !== d.size) throw new Error(`blob ${shortDigest(d.digest)}: got ${received} bytes, the manifest says ${d.size}`);
  return sourceOf(res);
}

async function request(url: string, init: RequestInit, server: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if ((err as Error).name === 'TimeoutError') throw new Error(`the mirror at ${server} did not answer in time`, { cause: err });
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new Error(`cannot reach the mirror at ${server} (${why})`, { cause: err });
  }
}

/** hit and stale answers came from the mirror's disk; miss (or no header: not an ocimirror) from upstream. */
function sourceOf(res: Response): Source {
  const cache = res.headers.get('x-ocimirror-cache');
  return cache === 'hit' || cache === 'stale' ? 'cache' : 'upstream';
}

async function answerError(res: Response, what: string): Promise<Error> {
  const text = await res.text().catch(() => '');
  let detail = text.slice(0, 300);
  try {
    const first = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    if (first) detail = `${first.code ?? ''}: ${first.message ?? ''}`;
  } catch {
    // not OCI error JSON
  }
  return new Error(`${what}: the mirror answered ${res.status}${detail ? ` (${detail})` : ''}`);
}

function tally(t: Tally, bytes: number): void {
  t.count++;
  t.bytes += bytes;
}

async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

function imageLine(r: WarmedImage): string {
  const blobCount = r.blobs.cache.count + r.blobs.upstream.count;
  const bytes = r.blobs.cache.bytes + r.blobs.upstream.bytes;
  const platforms = r.mediaType && isIndexType(r.mediaType) ? `, ${r.images} manifests in index` : '';
  const shared = r.alreadyFetched ? `, ${r.alreadyFetched} already fetched` : '';
  return `${r.image}: ${r.digest ? shortDigest(r.digest) : ''}${platforms}, ${blobCount} blobs, ${formatBytes(bytes)} (cache ${r.blobs.cache.count}, upstream ${r.blobs.upstream.count}${shared}) in ${(r.durationMs / 1000).toFixed(1)}s`;
}

interface Summary {
  readonly warmed: number;
  readonly failed: number;
  readonly manifests: Record<Source, Tally>;
  readonly blobs: Record<Source, Tally>;
  readonly durationMs: number;
}

function summarize(results: readonly WarmedImage[], durationMs: number): Summary {
  const sum = (pick: (r: WarmedImage) => Record<Source, Tally>): Record<Source, Tally> => ({
    cache: { count: results.reduce((n, r) => n + pick(r).cache.count, 0), bytes: results.reduce((n, r) => n + pick(r).cache.bytes, 0) },
    upstream: { count: results.reduce((n, r) => n + pick(r).upstream.count, 0), bytes: results.reduce((n, r) => n + pick(r).upstream.bytes, 0) },
  });
  return { warmed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length, manifests: sum((r) => r.manifests), blobs: sum((r) => r.blobs), durationMs };
}

function summaryText(s: Summary, server: string): string {
  const line = (t: Record<Source, Tally>) =>
    `${t.cache.count + t.upstream.count}, ${formatBytes(t.cache.bytes + t.upstream.bytes)} (from cache: ${t.cache.count}, ${formatBytes(t.cache.bytes)}; from upstream: ${t.upstream.count}, ${formatBytes(t.upstream.bytes)})`;
  return [
    `warmed ${s.warmed} of ${s.warmed + s.failed} images through ${server} in ${(s.durationMs / 1000).toFixed(1)}s${s.failed ? ` (${s.failed} failed)` : ''}`,
    `  manifests: ${line(s.manifests)}`,
    `  blobs:     ${line(s.blobs)}`,
  ].join('\n');
}
