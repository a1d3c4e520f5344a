// Replicas without a shared volume follow each other's cold downloads over HTTP: the downloading
// replica publishes (through the Redis lease) an upload id that names its internal address, and a
// follower reads the bytes written so far from it (routes/peer-uploads.ts answers there). Once the
// downloader dropped its scratch copy, the follower reads the rest from the store (the blob committed).
import type { BlobUpload, ByteRange, PartialBlob } from './blob-store.ts';

/** The uploads this replica is writing, by their local name. */
export interface PeerUploads {
  local(name: string): BlobUpload | undefined;
}

/** Path of an upload on the replica that writes it. */
export const PEER_UPLOADS_PATH = '/_ocimirror/uploads';

export interface PeerUploadId {
  /** The replica's base URL ("http://10.0.0.5:5000"). */
  readonly peer: string;
  /** The upload's local name there. */
  readonly name: string;
  readonly digest: string;
}

export function formatPeerUploadId(id: PeerUploadId): string {
  return `${id.name}|${id.digest}|${id.peer}`;
}

export function parsePeerUploadId(id: string): PeerUploadId | undefined {
  const [name, digest, peer, ...rest] = id.split('|');
  if (!name || !digest || !peer || rest.length || !/^[0-9a-f]{16,64}$/.test(name) || !/^https?:\/\/[^/]+$/.test(peer)) return undefined;
  return { peer, name, digest };
}

/** The PartialBlob of an upload on another replica; `committed` reads the blob once it is in the store. */
export function followPeer(id: PeerUploadId, committed: { size(): Promise<number | undefined>; read(range: ByteRange): Promise<Uint8Array | undefined> }): PartialBlob {
  const url = `${id.peer}${PEER_UPLOADS_PATH}/${id.name}`;
  const controller = new AbortController();
  const ask = async (from: number, length: number): Promise<{ written: number; bytes: Uint8Array } | undefined> => {
    const res = await fetch(`${url}?from=${from}&length=${length}`, { signal: controller.signal });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) throw new Error(`peer ${id.peer} answered ${res.status} for an upload`);
    return { written: Number(res.headers.get('x-upload-written')), bytes: new Uint8Array(await res.arrayBuffer()) };
  };
  return {
    size: async () => {
      const answer = await ask(0, 0);
      if (answer) return answer.written;
      const size = await committed.size();
      if (size === undefined) throw new Error(`the upload on ${id.peer} is gone and the blob is not stored`);
      return size;
    },
    readInto: async (target, targetOffset, position, length) => {
      if (length <= 0) return 0;
      let bytes = (await ask(position, length))?.bytes;
      bytes ??= await committed.read({ start: position, end: position + length - 1 });
      if (!bytes) throw new Error(`the upload on ${id.peer} is gone and the blob is not stored`);
      const n = Math.min(bytes.byteLength, length);
      target.set(bytes.subarray(0, n), targetOffset);
      return n;
    },
    close: async () => controller.abort(),
  };
}
