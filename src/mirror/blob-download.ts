// One blob travelling from upstream to disk, and any number of clients reading it meanwhile.
// The download writes a temp file (digest checked as bytes arrive); every client, the first one
// included, reads behind the writer (follow-reader.ts): the newest bytes from the upload's write
// buffers, older ones from the file. The download belongs to the cache, not to a client: it runs to
// its end (or its upstream timeout) even if every client has gone.
import type { Readable } from 'node:stream';
import type { BlobUpload, StoredBlob } from '../store/blob-store.ts';
import { release } from '../store/release-bytes.ts';
import { InflightBlob } from './inflight-blob.ts';
import { chunksOf } from './stream-chunks.ts';

export interface BlobDownloadOptions {
  readonly digest: string;
  readonly size: number | undefined;
  readonly upload: BlobUpload;
  readonly body: Readable;
  readonly onBytes?: (count: number) => void;
  readonly onCommitted?: (blob: StoredBlob) => Promise<void>;
}

export class BlobDownload extends InflightBlob {
  readonly finished: Promise<void>;
  readonly #upload: BlobUpload;
  readonly #body: Readable;

  constructor(options: BlobDownloadOptions) {
    super(options.digest, options.size);
    this.#upload = options.upload;
    this.#body = options.body;
    this.finished = this.#pump(options);
  }

  get written(): number {
    return this.#upload.written;
  }

  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    return this.#upload.readInto(target, targetOffset, position, length);
  }

  /** Breaks off the upstream body: the download fails and nothing is cached. */
  override cancel(): void {
    if (this.state === 'running') this.#body.destroy(new Error('download cancelled'));
  }

  protected closeSource(): void {
    void this.#upload.abort();
  }

  async #pump({ body, onBytes, onCommitted }: BlobDownloadOptions): Promise<void> {
    try {
      // Awaiting each write makes the upstream socket follow the disk's pace: memory stays flat.
      for await (const chunk of chunksOf(body)) {
        // Readers stream what was written before the end is checked: never take a byte past the length
        // the clients were promised (a response smuggled after it would reach them as a second answer).
        if (this.size !== undefined && this.#upload.written + chunk.byteLength > this.size) {
          throw new Error(`upstream sent more than the ${this.size} bytes it announced`);
        }
        onBytes?.(chunk.byteLength);
        await this.#upload.write(chunk);
        // The upload copied the bytes, and nothing else holds the body's chunks.
        release(chunk);
        this.progress();
      }
      if (this.size !== undefined && this.#upload.written !== this.size) {
        throw new Error(`upstream sent ${this.#upload.written} of ${this.size} bytes`);
      }
      const blob = await this.#upload.commit();
      await onCommitted?.(blob).catch(() => {});
      this.settle('committed');
    } catch (err) {
      body.destroy();
      // Drop the partial file now, whether or not readers are still attached.
      await this.#upload.abort();
      this.settle('failed', err as Error);
    }
  }
}
