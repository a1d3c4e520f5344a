// One blob travelling from upstream to disk, and any number of clients reading it meanwhile.
// The download writes a temp file (digest checked as bytes arrive); every client, the first one
// included, reads that file behind the writer. The last byte is held back until the digest matched,
// so no client ever completes a response with bytes that turn out to be corrupt: on a mismatch or a
// broken upstream the clients' connections are destroyed instead. The download belongs to the cache,
// not to a client: it runs to its end (or its upstream timeout) even if every client has gone.
import { EventEmitter, once } from 'node:events';
import type { Readable as NodeReadable } from 'node:stream';
import { Readable } from 'node:stream';
import type { BlobUpload, ByteRange, StoredBlob } from '../store/blob-store.ts';

const READ_CHUNK = 1024 * 1024;

export class BlobDownload extends EventEmitter {
  readonly digest: string;
  /** From the upstream's Content-Length; undefined when it sent none. */
  readonly size: number | undefined;
  readonly #upload: BlobUpload;
  #readers = 0;
  #state: 'running' | 'committed' | 'failed' = 'running';
  #error?: Error;
  /** Settles when the download committed or failed; never rejects. */
  readonly finished: Promise<void>;

  constructor(options: {
    digest: string;
    size: number | undefined;
    upload: BlobUpload;
    body: NodeReadable;
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

  get state(): 'running' | 'committed' | 'failed' {
    return this.#state;
  }

  async #pump(body: NodeReadable, onBytes: (count: number) => void, onCommitted: (blob: StoredBlob) => Promise<void>): Promise<void> {
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
    this.#readers++;
    let position = range?.start ?? 0;
    const end = range ? range.end + 1 : undefined; // exclusive
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#readers--;
      this.#releaseIfIdle();
    };
    const download = this;
    const stream = new Readable({
      highWaterMark: READ_CHUNK,
      async read() {
        try {
          for (;;) {
            const total = download.#state === 'committed' ? download.written : undefined;
            const stop = end ?? total;
            if (stop !== undefined && position >= stop) {
              this.push(null);
              return;
            }
            if (download.#state === 'failed') throw download.#error ?? new Error('download failed');
            // Hold the last byte back until the digest was verified.
            const limit = download.#state === 'committed' ? download.written : download.written - 1;
            const want = Math.min(READ_CHUNK, (stop ?? Infinity) - position, limit - position);
            if (want > 0) {
              const bytes = await download.#upload.readAt(position, want);
              position += bytes.byteLength;
              if (bytes.byteLength > 0) {
                this.push(bytes);
                return;
              }
            }
            await once(download, 'progress');
          }
        } catch (err) {
          this.destroy(err as Error);
        }
      },
      destroy(err, callback) {
        release();
        callback(err);
      },
    });
    stream.once('end', release);
    return stream;
  }

  #releaseIfIdle(): void {
    if (this.#state !== 'running' && this.#readers === 0) void this.#upload.abort();
  }
}
