// Blob uploads into a hosted repository (distribution-spec "Pushing blobs"): a session per upload,
// chunks in order, the digest at the end. A session is continued only through the repository that
// opened it.
import { parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import { DigestMismatchError, UploadGoneError, UploadOffsetError, type StoredBlob, type UploadSession } from '../store/blob-store.ts';
import type { HostedDeps } from './deps.ts';
import { pinAround } from './link.ts';

export function startUpload(deps: HostedDeps, key: string): Promise<UploadSession> {
  return deps.blobs.createSession(key);
}

export async function openUpload(deps: HostedDeps, key: string, id: string): Promise<UploadSession> {
  const session = await deps.blobs.openSession(id);
  if (!session || session.owner !== key) throw uploadUnknown(id);
  return session;
}

/** How many bytes the upload holds so far. */
export async function uploadSize(session: UploadSession): Promise<number> {
  try {
    return await session.size();
  } catch (err) {
    throw uploadError(err, session.id);
  }
}

/** Appends a chunk; `start` is where the client says it begins (Content-Range), if it said. */
export async function appendChunk(session: UploadSession, start: number | undefined, body: AsyncIterable<Uint8Array>): Promise<number> {
  try {
    return await session.append(start ?? (await session.size()), body);
  } catch (err) {
    throw uploadError(err, session.id);
  }
}

/** Finishes the upload with its last bytes (if any): verified against `digestText`, stored, linked. */
export async function finishUpload(deps: HostedDeps, key: string, session: UploadSession, digestText: string, body: AsyncIterable<Uint8Array> | undefined): Promise<StoredBlob> {
  const digest = parseDigest(digestText).value;
  try {
    if (body) await session.append(await session.size(), body);
    const stored = await pinAround(deps, digest, () => session.commit(digest));
    await deps.index.linkBlob(key, digest, stored.size);
    deps.metrics.hostedPushedBytes.inc(stored.size);
    return stored;
  } catch (err) {
    if (err instanceof DigestMismatchError) {
      throw new OciError('DIGEST_INVALID', 'the uploaded content does not match the digest', { detail: { digest, actual: err.actual } });
    }
    throw uploadError(err, session.id);
  }
}

export async function cancelUpload(session: UploadSession): Promise<void> {
  await session.abort();
}

function uploadUnknown(id: string): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry (finished, cancelled or expired)', { detail: { uuid: id.slice(0, 64) } });
}

function uploadError(err: unknown, id: string): unknown {
  if (err instanceof UploadGoneError) return uploadUnknown(id);
  if (err instanceof UploadOffsetError) {
    return new OciError('RANGE_INVALID', err.message, {
      headers: { range: `0-${Math.max(0, err.size - 1)}`, 'docker-upload-uuid': id },
      detail: { size: err.size },
    });
  }
  return err;
}
