// One blob travelling from upstream to disk, and any number of clients reading it meanwhile.
// The download writes a temp file (digest checked as bytes arrive); every client, the first one
// included, reads that file behind the writer (follow-reader.ts). The download belongs to the cache,
// not to a client: it runs to its end (or its upstream timeout) even if every client has gone.
import type { Readable } from 'node:stream';
import type { BlobUpload, StoredBlob } from '../store/blob-store.ts';
import { InflightBlob } from './inflight-blob.ts';
import { RecentChunks } from './recent-chunks.ts';
import { chunksOf } from './stream-chunks.ts';

export interface BlobDownloadOptions {
  readonly digest: string;
  readonly size: number | undefined;
  readonly upload: BlobUpload;
  readonly body: Readable;
  readonly onBytes?: (count: number) => void;
  /** Called once with each body chunk the download no longer holds (see UpstreamResponse.release). */
  readonly releaseChunk?: (chunk: Uint8Array) => void;
  readonly onCommitted?: (blob: StoredBlob) => Promise<void>;
}

/** How much of what just arrived stays in memory for readers keeping pace. */
const RECENT_BYTES = 1024 * 1024;

export class BlobDownload extends InflightBlob {
  readonly finished: Promise<void>;
  readonly #upload: BlobUpload;
  readonly #recent: RecentChunks;

  constructor(options: BlobDownloadOptions) {
    super(options.digest, options.size);
    this.#upload = options.upload;
    this.#recent = new RecentChunks(RECENT_BYTES, options.releaseChunk);
    this.finished = this.#pump(options);
  }

  get written(): number {
    return this.#upload.written;
  }

  async readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    const available = Math.max(0, Math.min(length, this.#upload.written - position));
    if (available === 0) return 0;
    return this.#recent.copyInto(target, targetOffset, position, available) ?? this.#upload.readInto(target, targetOffset, position, available);
  }

  protected closeSource(): void {
    this.#recent.clear();
    void this.#upload.abort();
  }

  async #pump({ body, onBytes, onCommitted }: BlobDownloadOptions): Promise<void> {
    try {
      // Awaiting each write makes the upstream socket follow the disk's pace: memory stays flat.
      for await (const chunk of chunksOf(body)) {
        onBytes?.(chunk.byteLength);
        const offset = this.#upload.written;
        await this.#upload.write(chunk);
        this.#recent.add(offset, chunk);
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
