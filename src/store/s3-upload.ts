// A blob on its way into the bucket (a cold download): every byte goes to a scratch file, which the
// clients reading behind the download (and peers following it, store/peer-uploads.ts) read from, and
// into a multipart upload to the blob's own key, which is completed only once the digest matched.
import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobUpload, StoredBlob } from './blob-store.ts';
import type { MultipartWriter } from './s3-multipart.ts';
import { VerifiedSpool } from './verified-spool.ts';

export class S3Upload implements BlobUpload {
  readonly digest: string;
  readonly id: string;
  readonly #path: string;
  readonly #handle: FileHandle;
  readonly #file: VerifiedSpool;
  readonly #object: MultipartWriter;
  readonly #onEnd: () => void;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  static async create(options: { digest: string; id: string; scratchDir: string; object: MultipartWriter; onEnd: () => void }): Promise<S3Upload> {
    const path = join(options.scratchDir, `${randomBytes(8).toString('hex')}`);
    const handle = await open(path, 'wx+', 0o600);
    return new S3Upload(options.digest, options.id, path, handle, options.object, options.onEnd);
  }

  private constructor(digest: string, id: string, path: string, handle: FileHandle, object: MultipartWriter, onEnd: () => void) {
    this.digest = digest;
    this.id = id;
    this.#path = path;
    this.#handle = handle;
    this.#file = new VerifiedSpool(digest, handle);
    this.#object = object;
    this.#onEnd = onEnd;
  }

  get written(): number {
    return this.#file.length;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    await this.#file.append(chunk);
    await this.#object.write(chunk);
  }

  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    return this.#file.readInto(target, targetOffset, position, length);
  }

  async commit(): Promise<StoredBlob> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    try {
      this.#file.verify();
      await this.#file.finish();
      await this.#object.complete();
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.#state = 'committed';
    return { digest: this.digest, size: this.#file.length };
  }

  async abort(): Promise<void> {
    if (this.#state === 'aborted') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'aborted';
    await this.#file.discard();
    this.#onEnd();
    if (wasOpen) await this.#object.abort().catch(() => {});
    await this.#handle.close().catch(() => {});
    await rm(this.#path, { force: true });
  }
}
