// Warming one image through the mirror's public registry API, exactly as a client pulls it: every
// platform manifest, config and layer, blob bodies streamed and dropped (constant memory). The mirror's
// X-Ocimirror-Cache header on each answer tells whether it came from the cache or the upstream. Used by
// `ocimirror warm` (over HTTP) and the web UI's warm page (in-process, through `fetch`).
import { digestOf, parseDigest } from '../oci/digest.ts';
import { referenceOf, type ImageRef } from '../oci/image-ref.ts';
import { MAX_MANIFEST_BYTES, resolveManifestMediaType, summarizeManifest, type Descriptor } from '../oci/manifest.ts';
import { MANIFEST_TYPES, bareMediaType, isIndexType } from '../oci/media-types.ts';
import { shortDigest } from '../cli/format.ts';

const MANIFEST_ACCEPT = MANIFEST_TYPES.join(', ');
const MANIFEST_TIMEOUT_MS = 120_000;

/** What a warm reports as it goes. */
export interface WarmProgress {
  /** The manifests are walked: this many bytes in this many blobs are to be fetched. */
  start(totalBytes: number, totalBlobs: number): void;
  bytes(count: number): void;
  blobDone(): void;
  /** The image's final line. */
  finish(line: string, ok: boolean): void;
}

export type Source = 'cache' | 'upstream';

export interface Tally {
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

export interface WarmTask {
  readonly server: string;
  readonly ref: ImageRef;
  readonly name: string;
  readonly parallel: number;
  /** Blob digests fetched earlier in this run. */
  readonly fetched: Set<string>;
  readonly progress: WarmProgress;
  /** Default: the global fetch (the CLI); the web UI passes the app's own. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Sent with every request (the web UI's Authorization). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Turns the result into the final progress line. */
  readonly line?: (result: WarmedImage) => string;
}

export async function warmImage(task: WarmTask): Promise<WarmedImage> {
  const { ref, progress } = task;
  const started = Date.now();
  const manifests: Record<Source, Tally> = { cache: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  const blobs: Record<Source, Tally> = { cache: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  let alreadyFetched = 0;
  let images = 0;
  let root: FetchedManifest | undefined;
  try {
    // Walk the manifests first (small), so the bar knows the total before the first layer.
    root = await getManifest(task, referenceOf(ref));
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
        level.push(await getManifest(task, digest));
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
      const source = await getBlob(task, d, (count) => progress.bytes(count));
      task.fetched.add(d.digest);
      tally(blobs[source], d.size);
      progress.blobDone();
    });
    const result: WarmedImage = { image: task.name, ok: true, digest: root.digest, mediaType: root.mediaType, images, manifests, blobs, alreadyFetched, durationMs: Date.now() - started };
    progress.finish(task.line ? task.line(result) : result.image, true);
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

async function getManifest(task: WarmTask, reference: string): Promise<FetchedManifest> {
  const url = repoUrl(task.server, task.ref, `manifests/${reference}`);
  const res = await request(task, url, { headers: { ...task.headers, accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(MANIFEST_TIMEOUT_MS) });
  if (!res.ok) throw await answerError(res, `manifest ${reference}`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength > MAX_MANIFEST_BYTES) throw new Error(`manifest ${reference} is over ${MAX_MANIFEST_BYTES} bytes`);
  const digest = res.headers.get('docker-content-digest') ?? digestOf(body);
  if (digestOf(body, parseDigest(digest).algorithm) !== digest || (reference.includes(':') && reference !== digest)) {
    throw new Error(`manifest ${reference}: the body does not match digest ${digest}`);
  }
  return { digest, mediaType: bareMediaType(res.headers.get('content-type')), body, source: sourceOf(res) };
}

async function getBlob(task: WarmTask, d: Descriptor, onBytes: (count: number) => void): Promise<Source> {
  const res = await request(task, repoUrl(task.server, task.ref, `blobs/${d.digest}`), { headers: { ...task.headers } });
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

async function request(task: WarmTask, url: string, init: RequestInit): Promise<Response> {
  const server = task.server;
  try {
    return await (task.fetch ?? fetch)(url, init);
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

