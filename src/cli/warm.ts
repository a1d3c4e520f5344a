// `ocimirror warm <image>...`: pulls images through the mirror's public registry API, exactly as a
// client would, so every platform manifest, config and layer ends up in its cache. Blob bodies are
// streamed and dropped (constant memory). The mirror's X-Ocimirror-Cache header on each answer tells
// whether it came from the cache or the upstream.
import { readFile } from 'node:fs/promises';
import { text as readStdin } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { ImageRefError, parseImageRef, type ImageRef } from '../oci/image-ref.ts';
import { isIndexType } from '../oci/media-types.ts';
import { ConfigError } from '../config/load.ts';
import { DEFAULT_SERVER_URL, serverUrl } from './endpoints.ts';
import { formatBytes, shortDigest } from './format.ts';
import { createProgress } from './progress.ts';
import { warmImage, type Source, type Tally, type WarmedImage } from '../warm/warm-image.ts';

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
    const result = await warmImage({ server, ref, name: text, parallel, fetched, progress: progress.image(text), line: imageLine });
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
