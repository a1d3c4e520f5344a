// A blob's bytes on their way into a store: hashed as they arrive and spooled to a file in large writes
// (batched-file-writer.ts), which the readers behind the writer read from. The disk store's uploads
// rename that file into place; the S3 store's keep it as the readers' copy beside the multipart upload.
import type { FileHandle } from 'node:fs/promises';
import { DigestVerifier, parseDigest } from '../oci/digest.ts';
import { BatchedFileWriter } from './batched-file-writer.ts';
import { DigestMismatchError } from './blob-store.ts';

export class VerifiedSpool {
  readonly digest: string;
  readonly #verifier: DigestVerifier;
  readonly #file: BatchedFileWriter;

  constructor(digest: string, handle: FileHandle) {
    this.digest = digest;
    this.#verifier = new DigestVerifier(parseDigest(digest));
    this.#file = new BatchedFileWriter(handle);
  }

  /** Bytes accepted so far. */
  get length(): number {
    return this.#file.length;
  }

  async append(chunk: Uint8Array): Promise<void> {
    this.#verifier.update(chunk);
    await this.#file.append(chunk);
  }

  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    return this.#file.readInto(target, targetOffset, position, length);
  }

  /** Waits until every accepted byte is in the file, then frees the write buffers (no append after). */
  finish(): Promise<void> {
    return this.#file.finish();
  }

  /** Frees the write buffers, writing nothing more (the upload was dropped). */
  discard(): Promise<void> {
    return this.#file.discard();
  }

  /** Throws DigestMismatchError unless the bytes accepted so far have the digest. */
  verify(): void {
    const { ok, actual } = this.#verifier.matches();
    if (!ok) throw new DigestMismatchError(this.digest, actual);
  }
}
