// /v2/<name>/blobs/uploads/...: blob pushes into a hosted repository or an override
// (distribution-spec "Pushing blobs"): POST opens a session (or uploads monolithically with ?digest=,
// or mounts with ?mount=&from=), PATCH appends a chunk, PUT ?digest= finishes, GET tells the progress,
// DELETE cancels.
import type { Context } from 'hono';
import { Hono } from 'hono';
import { linkHeld } from '../hosted/link.ts';
import { appendChunk, cancelUpload, finishUpload, openUpload, startUpload, uploadSize } from '../hosted/uploads.ts';
import type { AppEnv } from '../http/env.ts';
import { hasBody, requestBody } from '../http/request-body.ts';
import { parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import type { UploadSession } from '../store/blob-store.ts';
import type { RegistryDeps } from './deps.ts';
import { nsQuery, sourceOf, targetOf, writableKey } from './routing.ts';

export function uploadRoutes(deps: RegistryDeps): Hono<AppEnv> {
  const start = async (c: Context<AppEnv>) => {
    c.set('route', 'upload_start');
    const target = targetOf(c, deps);
    const key = writableKey(deps, target);
    const mount = c.req.query('mount');
    const from = c.req.query('from');
    if (mount !== undefined && from !== undefined) {
      const digest = parseDigest(mount).value;
      if (await mountable(c, deps, from, digest) && (await linkHeld(deps.hosted, key, digest))) {
        return c.body(null, 201, { location: `/v2/${target.name}/blobs/${digest}${nsQuery(c)}`, 'docker-content-digest': digest, 'content-length': '0' });
      }
    }
    const session = await startUpload(deps.hosted, key);
    const digest = c.req.query('digest');
    if (digest !== undefined) {
      // Monolithic: the whole blob in this request.
      const stored = await finishUpload(deps.hosted, key, session, digest, requestBody(c)).catch(async (err: unknown) => {
        await cancelUpload(session).catch(() => {});
        throw err;
      });
      return c.body(null, 201, { location: `/v2/${target.name}/blobs/${stored.digest}${nsQuery(c)}`, 'docker-content-digest': stored.digest, 'content-length': '0' });
    }
    return c.body(null, 202, progressHeaders(c, target.name, session.id, 0));
  };

  const path = '/v2/:name{.+}/blobs/uploads/:id';
  const session = async (c: Context<AppEnv>): Promise<{ name: string; key: string; session: UploadSession }> => {
    const target = targetOf(c, deps);
    const key = writableKey(deps, target);
    return { name: target.name, key, session: await openUpload(deps.hosted, key, c.req.param('id') ?? '') };
  };

  return new Hono<AppEnv>()
    .post('/v2/:name{.+}/blobs/uploads/', start)
    .post('/v2/:name{.+}/blobs/uploads', start)
    .get(path, async (c) => {
      c.set('route', 'upload_status');
      const { name, session: s } = await session(c);
      return c.body(null, 204, progressHeaders(c, name, s.id, await uploadSize(s)));
    })
    .patch(path, async (c) => {
      c.set('route', 'upload_chunk');
      const { name, session: s } = await session(c);
      const size = await appendChunk(s, chunkStart(c), requestBody(c));
      return c.body(null, 202, progressHeaders(c, name, s.id, size));
    })
    .put(path, async (c) => {
      c.set('route', 'upload_finish');
      const { name, key, session: s } = await session(c);
      const digest = c.req.query('digest');
      if (digest === undefined) throw new OciError('DIGEST_INVALID', 'finishing an upload needs ?digest=<digest of the whole blob>');
      const stored = await finishUpload(deps.hosted, key, s, digest, hasBody(c) ? requestBody(c) : undefined);
      return c.body(null, 201, { location: `/v2/${name}/blobs/${stored.digest}${nsQuery(c)}`, 'docker-content-digest': stored.digest, 'content-length': '0' });
    })
    .delete(path, async (c) => {
      c.set('route', 'upload_cancel');
      const { session: s } = await session(c);
      await cancelUpload(s);
      return c.body(null, 204);
    });
}

/** Whether the repository `from` (named as a client would, routed like this request) can serve the blob from this registry's store. */
async function mountable(c: Context<AppEnv>, deps: RegistryDeps, from: string, digest: string): Promise<boolean> {
  try {
    const target = deps.resolver.resolve({ ns: c.req.query('ns'), host: c.req.header('host'), name: from });
    // With client authentication on, a mount reads `from`: the caller must be allowed to pull it.
    const authorize = c.get('authorize');
    if (authorize && !authorize(target, 'pull')) return false;
    const head = await sourceOf(c, deps, target).headBlob(digest);
    return head.source === 'hosted' || head.source === 'cache';
  } catch {
    return false; // not mountable: the client uploads the blob instead
  }
}

function progressHeaders(c: Context<AppEnv>, name: string, id: string, size: number): Record<string, string> {
  return {
    location: `/v2/${name}/blobs/uploads/${id}${nsQuery(c)}`,
    range: `0-${Math.max(0, size - 1)}`,
    'docker-upload-uuid': id,
    'content-length': '0',
  };
}

/** Where a PATCH chunk starts, from `Content-Range: <start>-<end>`; undefined for a streamed PATCH without one. */
function chunkStart(c: Context<AppEnv>): number | undefined {
  const header = c.req.header('content-range');
  if (header === undefined) return undefined;
  const match = /^\s*(?:bytes[ =])?\s*(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(header);
  if (!match || Number(match[2]) < Number(match[1])) throw new OciError('RANGE_INVALID', 'Content-Range must be <start>-<end>', { detail: { contentRange: header.slice(0, 100) } });
  const length = c.req.header('content-length');
  if (length !== undefined && Number(length) !== Number(match[2]) - Number(match[1]) + 1) {
    throw new OciError('SIZE_INVALID', 'Content-Length does not match Content-Range', { detail: { contentRange: header.slice(0, 100), contentLength: length.slice(0, 20) } });
  }
  return Number(match[1]);
}
