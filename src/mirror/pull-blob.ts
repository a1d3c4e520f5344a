// GET/HEAD of a blob: from the local disk when held, else joined to the one download in progress for
// that digest, else a new download from upstream that every client streams from as it arrives.
import { OciError } from '../oci/errors.ts';
import { parseDigest } from '../oci/digest.ts';
import type { BlobStream } from '../store/blob-stream.ts';
import type { ByteRange, StoredBlob } from '../store/blob-store.ts';
import { servableByMirror } from './hosted-guard.ts';
import type { Routed } from '../upstream/route.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobDownload } from './blob-download.ts';
import type { InflightBlob, ProxyDeps } from './deps.ts';
import type { DownloadLease } from '../store/download-locks.ts';
import { metadataFailed } from './metadata-failed.ts';
import { RemoteDownload } from './remote-download.ts';
import { upstreamError } from './upstream-answer.ts';

/** What a blob pull uses. */
export type BlobPullDeps = Pick<ProxyDeps, 'config' | 'clientFor' | 'blobs' | 'meta' | 'pins' | 'downloads' | 'locks' | 'readers' | 'budget' | 'negative' | 'blobStarts' | 'prefetch' | 'metrics' | 'logger' | 'now'>;

export interface BlobAnswer {
  /** Total size; undefined only while downloading from an upstream that sent no Content-Length. */
  readonly size: number | undefined;
  readonly source: 'cache' | 'upstream';
  open(range?: ByteRange): Promise<BlobStream>;
}

export async function pullBlob(deps: BlobPullDeps, routed: Routed, digestText: string): Promise<BlobAnswer> {
  const digest = parseDigest(digestText).value;
  const prefetched = deps.prefetch.requested(digest);
  const held = await heldForMirror(deps, digest);
  if (held) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: prefetched ? 'miss' : 'hit' });
    return fromStore(deps, digest, held.size, prefetched ? 'upstream' : 'cache');
  }
  deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' });
  const running = deps.downloads.get(digest);
  if (running?.state === 'running') {
    deps.metrics.coalescedRequests.inc();
    return following(running);
  }
  if (routed.upstream.offline) throw new OciError('BLOB_UNKNOWN', 'blob is not cached and the mirror is offline', { detail: { digest } });
  const negativeKey = missKey(routed, digest);
  const known404 = deps.negative.get(negativeKey);
  if (known404) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'negative' });
    throw known404;
  }
  const { promise, joined } = deps.blobStarts.run(digest, () => startOrFollow(deps, routed, digest));
  if (joined) deps.metrics.coalescedRequests.inc();
  const inflight = await rememberingMiss(deps, negativeKey, promise);
  if (inflight) return following(inflight);
  // Another process finished it while we looked.
  const stored = await deps.blobs.stat(digest);
  if (!stored) throw new OciError('UNAVAILABLE', 'blob download by another mirror process did not complete', { status: 502, detail: { digest } });
  return fromStore(deps, digest, stored.size);
}

/**
 * Starts downloading a blob no client asked for yet (layer prefetch, prefetch.ts), unless it is stored,
 * arriving, known missing, or being started by a client: then undefined, nothing to do.
 */
export async function prefetchBlob(deps: BlobPullDeps, routed: Routed, digestText: string): Promise<InflightBlob | undefined> {
  const digest = parseDigest(digestText).value;
  if (deps.downloads.get(digest)?.state === 'running' || (await deps.blobs.stat(digest))) return undefined;
  const negativeKey = missKey(routed, digest);
  if (deps.negative.get(negativeKey)) return undefined;
  const { promise, joined } = deps.blobStarts.run(digest, () => startOrFollow(deps, routed, digest));
  if (joined) return undefined;
  return rememberingMiss(deps, negativeKey, promise);
}

/** The negative cache's key for this blob in this upstream repository. */
function missKey(routed: Routed, digest: string): string {
  return `blob|${routed.upstream.name}|${routed.repo}|${digest}`;
}

/** The download start's outcome; a failure is remembered under `negativeKey` (a 404 is asked again only after its TTL). */
async function rememberingMiss(deps: BlobPullDeps, negativeKey: string, start: Promise<InflightBlob | undefined>): Promise<InflightBlob | undefined> {
  try {
    return await start;
  } catch (err) {
    deps.negative.remember(negativeKey, err);
    throw err;
  }
}

/** The stored blob, if the mirror may serve it (hosted-guard.ts). */
async function heldForMirror(deps: BlobPullDeps, digest: string): Promise<StoredBlob | undefined> {
  const held = await deps.blobs.stat(digest);
  return held && (await servableByMirror(deps, digest, 'blob')) ? held : undefined;
}

/** `source`: upstream for the first request of a blob that layer prefetch just downloaded for this pull. */
function fromStore(deps: BlobPullDeps, digest: string, size: number, source: BlobAnswer['source'] = 'cache'): BlobAnswer {
  void deps.meta.touchBlob(digest, size, deps.now()).catch((err: unknown) => metadataFailed(deps, err));
  return {
    size,
    source,
    open: async (range) => {
      const stream = await deps.blobs.open(digest, range);
      if (!stream) throw new OciError('BLOB_UNKNOWN', 'blob was removed from the cache', { detail: { digest } });
      // Counted as in use until the stream is done, so eviction passes it by.
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

function following(download: InflightBlob): BlobAnswer {
  return { size: download.size, source: 'upstream', open: async (range) => download.createReader(range) };
}

const NO_LEASE: DownloadLease = { publish: async () => {}, release: async () => {} };

/**
 * Downloads the blob if this process gets the digest's lease; otherwise follows the upload of the
 * process that holds it. Undefined: the blob got stored meanwhile.
 */
async function startOrFollow(deps: BlobPullDeps, routed: Routed, digest: string): Promise<InflightBlob | undefined> {
  const deadline = Date.now() + deps.config.upstreamTimeouts.responseMs;
  for (;;) {
    // Without Redis the replicas cannot agree: download anyway rather than fail the client.
    const lease = await deps.locks.acquire(digest).catch((err: unknown) => {
      metadataFailed(deps, err);
      return NO_LEASE;
    });
    if (lease) {
      try {
        return await startDownload(deps, routed, digest, lease);
      } catch (err) {
        await lease.release();
        throw err;
      }
    }
    if (await deps.blobs.stat(digest)) return undefined;
    const upload = await deps.locks.inflight(digest).catch(() => undefined);
    const partial = upload ? await deps.blobs.follow(upload.id) : undefined;
    if (upload && partial) {
      const remote = new RemoteDownload({
        digest,
        size: upload.size,
        partial,
        storedSize: async () => (await deps.blobs.stat(digest))?.size,
        leaseHeld: () => deps.locks.held(digest).catch(() => false),
      });
      track(deps, remote, routed, 'blob followed from another mirror process');
      return remote;
    }
    if (Date.now() > deadline) throw new OciError('UNAVAILABLE', 'another mirror process is downloading this blob and has not started writing it', { status: 504, detail: { digest } });
    await sleep(50);
  }
}

async function startDownload(deps: BlobPullDeps, routed: Routed, digest: string, lease: DownloadLease): Promise<BlobDownload> {
  const client = deps.clientFor(routed.upstream.name);
  const res = await client.request({ method: 'GET', path: `/v2/${routed.repo}/blobs/${digest}`, repo: routed.repo, via: routed.via, bulk: true });
  if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'BLOB_UNKNOWN');
  const length = Number(res.headers['content-length']);
  const size = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
  // A store that cannot take the blob (disk full, permissions) must not leave the upstream connection held.
  const upload = await deps.blobs.begin(digest).catch((err: unknown) => {
    res.body.destroy();
    throw err;
  });
  await lease.publish({ id: upload.id, ...(size !== undefined ? { size } : {}) }).catch((err: unknown) => metadataFailed(deps, err));
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
  void download.finished.then(() => lease.release());
  track(deps, download, routed, 'blob cached');
  return download;
}

/** Registers an inflight blob so later requests join it, and logs how it ended. */
function track(deps: BlobPullDeps, download: InflightBlob, routed: Routed, success: string): void {
  deps.downloads.set(download.digest, download);
  deps.metrics.inflightDownloads.inc();
  void download.finished.then(() => {
    deps.downloads.delete(download.digest);
    deps.metrics.inflightDownloads.dec();
    const log = { upstream: routed.upstream.name, repo: routed.repo, digest: download.digest, size_bytes: download.written };
    if (download.state === 'committed') deps.logger.info(log, success);
    else deps.logger.warn({ ...log, err: download.error }, 'blob download failed; nothing cached');
  });
}

/** HEAD of a blob: the size, from disk, from a download in progress, or from an upstream HEAD (no download). */
export async function headBlob(deps: BlobPullDeps, routed: Routed, digestText: string): Promise<{ size: number | undefined; source: 'cache' | 'upstream' }> {
  const digest = parseDigest(digestText).value;
  const prefetched = deps.prefetch.requested(digest);
  const held = await heldForMirror(deps, digest);
  if (held) {
    deps.metrics.cacheLookups.inc({ kind: 'blob', result: prefetched ? 'miss' : 'hit' });
    return { size: held.size, source: prefetched ? 'upstream' : 'cache' };
  }
  deps.metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' });
  const running = deps.downloads.get(digest);
  if (running?.state === 'running') return { size: running.size, source: 'upstream' };
  if (routed.upstream.offline) throw new OciError('BLOB_UNKNOWN', 'blob is not cached and the mirror is offline', { detail: { digest } });
  const res = await deps.clientFor(routed.upstream.name).request({ method: 'HEAD', path: `/v2/${routed.repo}/blobs/${digest}`, repo: routed.repo, via: routed.via });
  res.body.resume();
  if (res.status !== 200) throw await upstreamError(res, routed.upstream.name, 'BLOB_UNKNOWN');
  const length = Number(res.headers['content-length']);
  return { size: Number.isSafeInteger(length) ? length : undefined, source: 'upstream' };
}
