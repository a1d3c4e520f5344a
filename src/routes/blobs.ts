// GET/HEAD /v2/<name>/blobs/<digest>, with single byte ranges.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import { parseRange } from '../http/range.ts';
import { sendStream } from '../http/send-stream.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { headBlob, pullBlob } from '../mirror/pull-blob.ts';
import { routeRequest } from './routing.ts';

export function blobRoutes(deps: ProxyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/v2/:name{.+}/blobs/:digest', async (c) => {
    c.set('route', 'blob');
    const routed = routeRequest(c, deps.table);
    const digest = c.req.param('digest');
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      etag: `"${digest}"`,
      'accept-ranges': 'bytes',
      'docker-distribution-api-version': 'registry/2.0',
      'oci-namespace': routed.upstream.name,
    };
    if (c.req.method === 'HEAD') {
      const head = await headBlob(deps, routed, digest);
      c.set('cache', head.source === 'cache' ? 'hit' : 'miss');
      headers['x-ocimirror-cache'] = c.get('cache');
      if (head.size !== undefined) headers['content-length'] = String(head.size);
      return c.body(null, 200, headers);
    }
    const blob = await pullBlob(deps, routed, digest);
    c.set('cache', blob.source === 'cache' ? 'hit' : 'miss');
    headers['x-ocimirror-cache'] = c.get('cache');
    const range = blob.size === undefined ? { kind: 'none' as const } : parseRange(c.req.header('range'), blob.size);
    if (range.kind === 'unsatisfiable') {
      throw new OciError('BLOB_UNKNOWN', 'requested range is not satisfiable', { status: 416, headers: { 'content-range': `bytes */${blob.size}` } });
    }
    const onBytes = (count: number) => {
      c.set('bytes', c.get('bytes') + count);
      deps.metrics.servedBytes.inc({ source: blob.source }, count);
    };
    if (range.kind === 'range') {
      const { start, end } = range.range;
      headers['content-range'] = `bytes ${start}-${end}/${blob.size}`;
      headers['content-length'] = String(end - start + 1);
      return sendStream(c, 206, headers, await blob.open(range.range), onBytes);
    }
    if (blob.size !== undefined) headers['content-length'] = String(blob.size);
    return sendStream(c, 200, headers, await blob.open(), onBytes);
  });
}
