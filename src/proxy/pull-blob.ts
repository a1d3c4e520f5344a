// GET/HEAD of a blob: from the local disk when held, else joined to the one download in progress for
// that digest, else a new download from upstream that every client streams from as it arrives.
import type { Readable } from 'node:stream';
import { OciError } from '../http/errors.ts';
import { parseDigest } from '../oci/digest.ts';
import type { ByteRange } from '../store/blob-store.ts';
import type { Routed } from '../upstream/route.ts';
import { BlobDownload } from './blob-download.ts';
import type { ProxyDeps } from './deps.ts';
import { upstreamError } from './upstream-answer.ts';

export interface BlobAnswer {
  /** Total size; undefined only while downloading from an upstream that sent no Content-Length. */
  readonly size: number | undefined;
  readonly source: 'cache' | 'upstream';
  open(range?: ByteRange): Promise<Readable>;
}

export async function pullBlob(deps: ProxyDeps, routed: Routed, digestText: string): Promise<BlobAnswer> {
  const digest = parseDigest(digestText).value;
  const held = await deps.blobs.stat(digest);
  if (held) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'hit' });
    void deps.meta.touchBlob(digest, held.size, deps.now()).catch((err: unknown) => metadataFailed(deps, err));
    return {
      size: held.size,
      source: 'cache',
      open: async (range) => {
        const stream = await deps.blobs.open(digest, range);
        if (!stream) throw new OciError('BLOB_UNKNOWN', 'blob was removed from the cache', { detail: { digest } });
        deps.readers.set(digest, (deps.readers.get(digest) ?? 0) + 1);
        stream.once('close', () => {
          const left = (deps.readers.get(digest) ?? 1) - 1;
          if (left > 0) deps.readers.set(digest, left);
          else deps.readers.delete(digest);
        });
        return stream;
      },
    };
  }
  deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' });
  const running = deps.downloads.get(digest);
  if (running?.state === 'running') {
    deps.metrics.coalescedRequests.inc();
    return following(running);
  }
  if (routed.upstream.offline) throw new OciError('BLOB_UNKNOWN', 'blob is not cached and the mirror is offline', { detail: { digest } });
  const negativeKey = `blob|${routed.upstream.name}|${routed.repo}|${digest}`;
  const known404 = deps.negative.get(negativeKey);
  if (known404) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'negative' });
    throw known404;
  }
  const { promise, joined } = deps.blobStarts.run(digest, () => startDownload(deps, routed, digest));
  if (joined) deps.metrics.coalescedRequests.inc();
  try {
    return following(await promise);
  } catch (err) {
    deps.negative.remember(negativeKey, err);
    throw err;
  }
}

function following(download: BlobDownload): BlobAnswer {
  return { size: download.size, source: 'upstream', open: async (range) => download.createReader(range) };
}

async function startDownload(deps: ProxyDeps, routed: Routed, digest: string): Promise<BlobDownload> {
  const client = deps.clientFor(routed.upstream.name);
  const res = await client.request({ method: 'GET', path: `/v2/${routed.repo}/blobs/${digest}`, repo: routed.repo });
  if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'BLOB_UNKNOWN');
  const length = Number(res.headers['content-length']);
  const size = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
  const upload = await deps.blobs.begin(digest);
  const upstreamName = routed.upstream.name;
  const download = new BlobDownload({
    digest,
    size,
    upload,
    body: res.body,
    onBytes: (count) => deps.metrics.upstreamBytes.inc({ upstream: upstreamName }, count),
    onCommitted: async (blob) => {
      await deps.meta.touchBlob(blob.digest, blob.size, deps.now()).catch((err: unknown) => metadataFailed(deps, err));
      deps.budget.added(blob.size);
    },
  });
  deps.downloads.set(digest, download);
  deps.metrics.inflightDownloads.inc();
  void download.finished.then(() => {
    deps.downloads.delete(digest);
    deps.metrics.inflightDownloads.dec();
    const log = { upstream: upstreamName, repo: routed.repo, digest, size_bytes: download.written };
    if (download.state === 'committed') deps.logger.info(log, 'blob cached');
    else deps.logger.warn({ ...log, err: download.error }, 'blob download failed; nothing cached');
  });
  return download;
}

export function metadataFailed(deps: ProxyDeps, err: unknown): void {
  deps.metrics.redisErrors.inc();
  deps.logger.warn({ err }, 'metadata store failed; serving without it');
}

/** HEAD of a blob: the size, from disk, from a download in progress, or from an upstream HEAD (no download). */
export async function headBlob(deps: ProxyDeps, routed: Routed, digestText: string): Promise<{ size: number | undefined; source: 'cache' | 'upstream' }> {
  const digest = parseDigest(digestText).value;
  const held = await deps.blobs.stat(digest);
  if (held) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'hit' });
    return { size: held.size, source: 'cache' };
  }
  deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' });
  const running = deps.downloads.get(digest);
  if (running?.state === 'running') return { size: running.size, source: 'upstream' };
  if (routed.upstream.offline) throw new OciError('BLOB_UNKNOWN', 'blob is not cached and the mirror is offline', { detail: { digest } });
  const res = await deps.clientFor(routed.upstream.name).request({ method: 'HEAD', path: `/v2/${routed.repo}/blobs/${digest}`, repo: routed.repo });
  res.body.resume();
  if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'BLOB_UNKNOWN');
  const length = Number(res.headers['content-length']);
  return { size: Number.isSafeInteger(length) ? length : undefined, source: 'upstream' };
}
