// Following a download that another mirror process (sharing the data dir and Redis) is making: its
// upload file is read as it grows; the blob appearing in the store means the digest was verified;
// the lease disappearing without that means the other process failed.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { ByteRange, PartialBlob } from '../store/blob-store.ts';
import { createFollowReader, type DownloadState, type FollowSource } from './follow-reader.ts';

export interface RemoteDownloadOptions {
  readonly digest: string;
  readonly size: number | undefined;
  readonly partial: PartialBlob;
  /** The stored blob's size once the other process committed it. */
  readonly storedSize: () => Promise<number | undefined>;
  /** Whether the other process still holds the download lease. */
  readonly leaseHeld: () => Promise<boolean>;
  readonly pollMs?: number;
}

export class RemoteDownload extends EventEmitter implements FollowSource {
  readonly digest: string;
  readonly size: number | undefined;
  readonly finished: Promise<void>;
  readonly #o: RemoteDownloadOptions;
  #written = 0;
  #state: DownloadState = 'running';
  #error?: Error;
  #readers = 0;

  constructor(options: RemoteDownloadOptions) {
    super();
    this.setMaxListeners(0);
    this.#o = options;
    this.digest = options.digest;
    this.size = options.size;
    this.finished = this.#watch();
  }

  get state(): DownloadState {
    return this.#state;
  }

  get written(): number {
    return this.#written;
  }

  get error(): Error | undefined {
    return this.#error;
  }

  async #watch(): Promise<void> {
    const pollMs = this.#o.pollMs ?? 50;
    try {
      while (this.#state === 'running') {
        const stored = await this.#o.storedSize();
        const written = stored ?? (await this.#o.partial.size());
        if (stored !== undefined) {
          this.#written = stored;
          this.#state = 'committed';
        } else if (written !== this.#written) {
          this.#written = written;
        } else if (!(await this.#o.leaseHeld()) && (await this.#o.storedSize()) === undefined) {
          throw new Error('the mirror process downloading this blob gave up');
        } else {
          await new Promise((resolve) => setTimeout(resolve, pollMs));
          continue;
        }
        this.emit('progress');
      }
    } catch (err) {
      this.#state = 'failed';
      this.#error = err as Error;
      this.emit('progress');
    } finally {
      this.#releaseIfIdle();
    }
  }

  createReader(range?: ByteRange): Readable {
    return createFollowReader(this, range);
  }

  readAt(position: number, length: number): Promise<Uint8Array> {
    return this.#o.partial.readAt(position, Math.min(length, this.#written - position));
  }

  retain(): void {
    this.#readers++;
  }

  release(): void {
    this.#readers--;
    this.#releaseIfIdle();
  }

  #releaseIfIdle(): void {
    if (this.#state !== 'running' && this.#readers === 0) void this.#o.partial.close();
  }
}
