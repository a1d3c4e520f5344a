// One blob travelling from upstream to disk, and any number of clients reading it meanwhile.
// The download writes a temp file (digest checked as bytes arrive); every client, the first one
// included, reads that file behind the writer (follow-reader.ts). The download belongs to the cache,
// not to a client: it runs to its end (or its upstream timeout) even if every client has gone.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';

import type { BlobUpload, ByteRange, StoredBlob } from '../store/blob-store.ts';
import { createFollowReader, type DownloadState, type FollowSource } from './follow-reader.ts';

export class BlobDownload extends EventEmitter implements FollowSource {
  readonly digest: string;
  /** From the upstream's Content-Length; undefined when it sent none. */
  readonly size: number | undefined;
  readonly #upload: BlobUpload;
  #readers = 0;
  #state: DownloadState = 'running';
  #error?: Error;
  /** Settles when the download committed or failed; never rejects. */
  readonly finished: Promise<void>;

  constructor(options: {
    digest: string;
    size: number | undefined;
    upload: BlobUpload;
    body: Readable;
    onBytes?: (count: number) => void;
    onCommitted?: (blob: StoredBlob) => Promise<void>;
  }) {
    super();
    this.setMaxListeners(0);
    this.digest = options.digest;
    this.size = options.size;
    this.#upload = options.upload;
    this.finished = this.#pump(options.body, options.onBytes ?? (() => {}), options.onCommitted ?? (async () => {}));
  }

  get written(): number {
    return this.#upload.written;
  }

  get state(): DownloadState {
    return this.#state;
  }

  async #pump(body: Readable, onBytes: (count: number) => void, onCommitted: (blob: StoredBlob) => Promise<void>): Promise<void> {
    try {
      // Awaiting each write makes the upstream socket follow the disk's pace: memory stays flat.
      for await (const chunk of body) {
        onBytes((chunk as Uint8Array).byteLength);
        await this.#upload.write(chunk as Uint8Array);
        this.emit('progress');
      }
      if (this.size !== undefined && this.#upload.written !== this.size) {
        throw new Error(`upstream sent ${this.#upload.written} of ${this.size} bytes`);
      }
      const blob = await this.#upload.commit();
      this.#state = 'committed';
      await onCommitted(blob).catch(() => {});
    } catch (err) {
      body.destroy();
      this.#state = 'failed';
      this.#error = err as Error;
      await this.#upload.abort();
    } finally {
      this.emit('progress');
      this.#releaseIfIdle();
    }
  }

  /** The error that ended the download, if it failed. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** A stream of the blob (or one range of it) that follows the download as it grows. */
  createReader(range?: ByteRange): Readable {
    return createFollowReader(this, range);
  }

  readAt(position: number, length: number): Promise<Uint8Array> {
    return this.#upload.readAt(position, length);
  }

  retain(): void {
    this.#readers++;
  }

  release(): void {
    this.#readers--;
    this.#releaseIfIdle();
  }

  #releaseIfIdle(): void {
    if (this.#state !== 'running' && this.#readers === 0) void this.#upload.abort();
  }
}
