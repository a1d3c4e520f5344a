// What a local download and a followed remote one have in common: a state that ends committed or
// failed, readers that follow the bytes as they arrive, and a file that stays open while they do.
import { EventEmitter } from 'node:events';
import type { BlobStream } from '../store/blob-stream.ts';
import type { ByteRange } from '../store/blob-store.ts';
import { createFollowReader, type DownloadState, type FollowSource } from './follow-reader.ts';

export abstract class InflightBlob extends EventEmitter implements FollowSource {
  readonly digest: string;
  /** Total size when known (from the upstream's Content-Length). */
  readonly size: number | undefined;
  /** Settles when the blob committed or failed; never rejects. */
  abstract readonly finished: Promise<void>;
  #readers = 0;
  #state: DownloadState = 'running';
  #error?: Error;

  constructor(digest: string, size: number | undefined) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.size = size;
  }

  abstract get written(): number;
  abstract readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number>;
  /** Releases the file once the blob settled and no reader is left. */
  protected abstract closeSource(): void;

  get state(): DownloadState {
    return this.#state;
  }

  /** The error that ended it, if it failed. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Ends the running state and wakes every reader. */
  protected settle(state: 'committed' | 'failed', error?: Error): void {
    this.#state = state;
    this.#error = error;
    this.progress();
    this.#closeIfIdle();
  }

  protected progress(): void {
    this.emit('progress');
  }

  /** A stream of the blob (or one range of it) that follows it as it grows. */
  createReader(range?: ByteRange): BlobStream {
    return createFollowReader(this, range);
  }

  /** Ends the download early where this process makes it (a followed one is another process's to end). */
  cancel(): void {}

  retain(): void {
    this.#readers++;
  }

  release(): void {
    this.#readers--;
    this.#closeIfIdle();
  }

  #closeIfIdle(): void {
    if (this.#state !== 'running' && this.#readers === 0) this.closeSource();
  }
}
