// GET /_ocimirror/uploads/<name>?from=&length=: the bytes of an upload this replica is writing, for a
// replica following it (store/peer-uploads.ts). The name is a random capability only Redis hands out.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import { PEER_UPLOADS_PATH, type PeerUploads } from '../store/peer-uploads.ts';

/** Bytes per answer: a follower asks again for the rest. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export function peerUploadRoutes(peers: PeerUploads): Hono<AppEnv> {
  return new Hono<AppEnv>().get(`${PEER_UPLOADS_PATH}/:name`, async (c) => {
    c.set('route', 'peer_upload');
    const upload = peers.local(c.req.param('name'));
    if (!upload) throw uploadGone();
    const from = Math.max(0, Math.floor(Number(c.req.query('from'))) || 0);
    const written = upload.written;
    const length = Math.max(0, Math.min(Math.floor(Number(c.req.query('length'))) || 0, MAX_ANSWER_BYTES, written - from));
    const bytes = new Uint8Array(length);
    // The upload may end (its scratch file go) meanwhile: the follower then reads the stored blob.
    const n = length ? await upload.readInto(bytes, 0, from, length).catch(() => undefined) : 0;
    if (n === undefined) throw uploadGone();
    return c.body(bytes.subarray(0, n), 200, { 'content-type': 'application/octet-stream', 'x-upload-written': String(written) });
  });
}

/** The upload ended here (or never was): the follower reads the stored blob instead. */
function uploadGone(): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', 'no download of that name is in progress on this replica');
}
