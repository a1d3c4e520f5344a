// Where blob and manifest bytes live. Only this store says whether this replica holds the bytes.
import type { BlobStream } from './blob-stream.ts';

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
}

/** A blob being written: bytes are checked against the digest as they arrive; commit publishes it atomically. */
export interface BlobUpload {
  readonly digest: string;
  /** Names this upload for other processes sharing the store, which can follow it (see BlobStore.follow). */
  readonly id: string;
  /** Bytes written so far. */
  readonly written: number;
  /**
   * Takes the next bytes (copied: once this resolves, `chunk` is the caller's again, to reuse or to
   * free with ArrayBuffer.transfer). They may stay in memory
   * until later writes or commit; other processes following the upload see them once they are in the file.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Copies up to `length` already-written bytes from `position` into `target` at `targetOffset`;
   * resolves with the count (followers of an in-flight download read here).
   */
  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number>;
  /** Verifies the digest and makes the blob visible; throws DigestMismatchError (and discards) otherwise. */
  commit(): Promise<StoredBlob>;
  /** Releases the upload: discards the bytes unless committed. Safe to call more than once. */
  abort(): Promise<void>;
}

/** Read access to an upload another process is writing into a shared store. */
export interface PartialBlob {
  /** Bytes written so far (by the other process). */
  size(): Promise<number>;
  /** Copies up to `length` bytes from `position` into `target` at `targetOffset`; resolves with the count. */
  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * A push's upload: bytes arrive in order, over one or more requests (and processes sharing the store),
 * and the digest is learned only at commit. Nothing of it is visible as a blob before commit.
 */
export interface UploadSession {
  /** Opaque, URL-safe; names the session across requests and restarts. */
  readonly id: string;
  /** Who opened it (a hosted repository): a session is continued only by its owner. */
  readonly owner: string;
  /** Bytes received so far. */
  size(): Promise<number>;
  /**
   * Appends `body` at `offset`, which must equal size() (UploadOffsetError otherwise, nothing written).
   * Bytes that arrived before a body broke off stay, so the client can resume after them. Each chunk
   * is copied before the next is asked for: the body may free a chunk then (http/request-body.ts does).
   */
  append(offset: number, body: AsyncIterable<Uint8Array>): Promise<number>;
  /** Checks every byte against `digest` and publishes them as that blob; DigestMismatchError (and the session is gone) otherwise. */
  commit(digest: string): Promise<StoredBlob>;
  /** Discards the session. Safe to call more than once. */
  abort(): Promise<void>;
}

export interface BlobStore {
  stat(digest: string): Promise<StoredBlob | undefined>;
  /** A stream of the blob (or of one range of it), or undefined when it is not held. */
  open(digest: string, range?: ByteRange): Promise<BlobStream | undefined>;
  /** The whole blob in memory: for manifests and other small documents. */
  read(digest: string): Promise<Uint8Array | undefined>;
  /** Stores small bytes whose digest the caller already checked or will have checked. */
  put(digest: string, bytes: Uint8Array): Promise<StoredBlob>;
  begin(digest: string): Promise<BlobUpload>;
  /** Opens the upload `id` (see BlobUpload.id), or undefined when it is gone (finished or failed). */
  follow(id: string): Promise<PartialBlob | undefined>;
  /**
   * Deletes the blob; resolves with whether it did. With `keep`, the blob is first taken out of sight,
   * then `keep` is asked: when it says yes (the blob was claimed meanwhile) the blob is put back.
   */
  delete(digest: string, keep?: () => Promise<boolean>): Promise<boolean>;
  /** Every stored blob, with when its bytes were last written (ms since epoch). */
  list(): AsyncIterable<StoredBlob & { readonly modifiedAt: number }>;

  createSession(owner: string): Promise<UploadSession>;
  /** The session `id`, or undefined when it is unknown, finished, cancelled or expired. */
  openSession(id: string): Promise<UploadSession | undefined>;
  /** Removes sessions that received nothing for `olderThanMs`; resolves with how many. */
  expireSessions(olderThanMs: number): Promise<number>;
}

/** A chunk that does not start where the session's bytes end (or arrives while another is being written). */
export class UploadOffsetError extends Error {
  override readonly name = 'UploadOffsetError';
  /** Bytes the session holds. */
  readonly size: number;
  constructor(size: number, offset: number) {
    super(`upload holds ${size} bytes; a chunk starting at ${offset} does not follow them`);
    this.size = size;
  }
}

export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super(`content does not match digest ${expected} (got ${actual})`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The upload session was finished, cancelled or expired while in use. */
export class UploadGoneError extends Error {
  override readonly name = 'UploadGoneError';
  constructor(id: string) {
    super(`upload ${id} is finished, cancelled or expired`);
  }
}
