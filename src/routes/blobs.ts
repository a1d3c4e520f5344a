// /v2/<name>/blobs/<digest>: GET/HEAD (single byte ranges) from whichever source answers the name;
// DELETE unlinks a blob from a hosted repository.
import { Hono } from 'hono';
import { deleteBlob } from '../hosted/delete.ts';
import type { AppEnv } from '../http/env.ts';
import { parseRange } from '../http/range.ts';
import { sendStream } from '../http/send-stream.ts';
import { OciError } from '../oci/errors.ts';
import type { BlobSource } from '../namespaces/source.ts';
import type { RegistryDeps } from './deps.ts';
import { sourceOf, targetOf, writableKey } from './routing.ts';

const CACHE_HEADER: Record<BlobSource, string> = { cache: 'hit', upstream: 'miss', hosted: 'hosted' };

export function blobRoutes(deps: RegistryDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get('/v2/:name{.+}/blobs/:digest', async (c) => {
      c.set('route', 'blob');
      const target = targetOf(c, deps);
      const source = sourceOf(c, deps, target);
      const digest = c.req.param('digest');
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        'accept-ranges': 'bytes',
        'docker-distribution-api-version': 'registry/2.0',
      };
      if (target.kind === 'mirrored') headers['oci-namespace'] = target.routed.upstream.name;
      if (c.req.method === 'HEAD') {
        const head = await source.headBlob(digest);
        c.set('cache', CACHE_HEADER[head.source]);
        headers['x-ocimirror-cache'] = c.get('cache');
        if (head.size !== undefined) headers['content-length'] = String(head.size);
        return c.body(null, 200, headers);
      }
      const blob = await source.blob(digest);
      c.set('cache', CACHE_HEADER[blob.source]);
      headers['x-ocimirror-cache'] = c.get('cache');
      // A stored blob (cached or hosted) from the storage itself, Range and all; a download in progress from here.
      if (deps.redirects && blob.source !== 'upstream') {
        const location = await deps.redirects.urlFor(digest);
        return c.body(null, 307, { location, 'docker-content-digest': digest, 'x-ocimirror-cache': c.get('cache'), 'content-length': '0', 'cache-control': 'no-store' });
      }
      const range = blob.size === undefined ? { kind: 'none' as const } : parseRange(c.req.header('range'), blob.size);
      if (range.kind === 'unsatisfiable') {
        throw new OciError('RANGE_INVALID', 'requested range is not satisfiable', { headers: { 'content-range': `bytes */${blob.size}` } });
      }
      const onBytes = (count: number) => {
        c.set('bytes', c.get('bytes') + count);
        deps.mirror.metrics.servedBytes.inc({ source: blob.source }, count);
      };
      if (range.kind === 'range') {
        const { start, end } = range.range;
        headers['content-range'] = `bytes ${start}-${end}/${blob.size}`;
        headers['content-length'] = String(end - start + 1);
        return sendStream(c, 206, headers, await blob.open(range.range), onBytes);
      }
      if (blob.size !== undefined) headers['content-length'] = String(blob.size);
      return sendStream(c, 200, headers, await blob.open(), onBytes);
    })
    .delete('/v2/:name{.+}/blobs/:digest', async (c) => {
      c.set('route', 'blob_delete');
      const target = targetOf(c, deps);
      const key = writableKey(deps, target);
      const digest = c.req.param('digest');
      if (await deleteBlob(deps.hosted, key, digest, c.get('user'))) return c.body(null, 202, { 'content-length': '0' });
      if (target.kind === 'mirrored') throw new OciError('UNSUPPORTED', `no pushed override of "${target.name}" links this blob; cached blobs go with \`ocimirror rm\` or eviction`, { detail: { digest } });
      throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });
    });
}
