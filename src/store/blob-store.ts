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
   * Takes the next bytes (the caller may reuse `chunk` once this resolves). They may stay in memory
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
  delete(digest: string): Promise<boolean>;
  list(): AsyncIterable<StoredBlob>;
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
