// A client's stream of a blob that is still arriving: it reads what the writer has accepted so far,
// waits for more, and holds the last byte back until the digest was verified (state "committed").
// If the download fails, the stream is destroyed with its error: the client's connection breaks
// instead of ending as if the body were complete.
import { once, type EventEmitter } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { DRAIN_CHUNK, SocketSink, type BlobStream } from '../store/blob-stream.ts';
import type { ByteRange } from '../store/blob-store.ts';

export type DownloadState = 'running' | 'committed' | 'failed';

/** Something being written that readers can follow; emits 'progress' whenever state or written change. */
export interface FollowSource extends EventEmitter {
  readonly state: DownloadState;
  readonly written: number;
  readonly error: Error | undefined;
  /** Copies up to `length` written bytes from `position` into `target` at `targetOffset`; resolves with the count. */
  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number>;
  /** Reader reference counting: the source keeps its file open while readers remain. */
  retain(): void;
  release(): void;
}

/**
 * How long a drain lets bytes wait for a full DRAIN_CHUNK before it sends what it has: a fast upstream
 * fills the buffer first (few, large socket writes: the cost per write dominates on loopback), a slow
 * one still reaches the client promptly.
 */
const GATHER_MS = 20;

export function createFollowReader(source: FollowSource, range?: ByteRange): BlobStream {
  return new FollowReader(source, range);
}

class FollowReader extends Readable implements BlobStream {
  readonly #source: FollowSource;
  #position: number;
  /** Exclusive; undefined: to the end, whatever size it turns out to have. */
  readonly #end: number | undefined;
  #released = false;

  constructor(source: FollowSource, range?: ByteRange) {
    super({ highWaterMark: DRAIN_CHUNK });
    this.#source = source;
    this.#position = range?.start ?? 0;
    this.#end = range ? range.end + 1 : undefined;
    source.retain();
    this.once('end', () => this.#release());
  }

  /** Bytes that may be read now from the current position, and whether more may come later. */
  #available(): { count: number; final: boolean } {
    const source = this.#source;
    if (source.state === 'failed') throw source.error ?? new Error('download failed');
    const committed = source.state === 'committed';
    const stop = this.#end ?? (committed ? source.written : Infinity);
    // Hold the last byte back until the digest was verified.
    const limit = Math.min(stop, committed ? source.written : source.written - 1);
    const count = Math.max(0, limit - this.#position);
    return { count, final: committed || this.#position + count >= stop };
  }

  #done(): boolean {
    const stop = this.#end ?? (this.#source.state === 'committed' ? this.#source.written : undefined);
    return stop !== undefined && this.#position >= stop;
  }

  async #readInto(target: Uint8Array, length: number): Promise<number> {
    const n = await this.#source.readInto(target, 0, this.#position, length);
    this.#position += n;
    return n;
  }

  override async _read(size: number): Promise<void> {
    try {
      for (;;) {
        if (this.#done()) {
          this.push(null);
          return;
        }
        const { count } = this.#available();
        if (count > 0) {
          const buffer = Buffer.allocUnsafe(Math.min(count, Math.max(size, DRAIN_CHUNK)));
          const n = await this.#readInto(buffer, buffer.length);
          if (n > 0) {
            this.push(n === buffer.length ? buffer : buffer.subarray(0, n));
            return;
          }
        }
        await once(this.#source, 'progress');
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#release();
    callback(err);
  }

  async drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void> {
    const sink = new SocketSink(dest);
    // One wake-up for the whole drain, fired by the source's progress, the client's disconnect and the
    // gather timer: a wait is then one promise, with no listener to add and remove each time (a drain
    // waits once per upstream chunk).
    let wake: (() => void) | undefined;
    const signal = (): void => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    // While bytes wait for a full buffer: the timer that ends the wait, and whether it has.
    let gatherTimer: NodeJS.Timeout | undefined;
    let gatherDue = false;
    this.#source.on('progress', signal);
    const stopWaitingForClose = sink.whenClosed(signal);
    try {
      if (this.readableDidRead || this.readableFlowing !== null || this.destroyed) throw new Error('drainInto: the stream was already read');
      let buffer: Buffer | undefined;
      while (!this.#done()) {
        sink.check();
        const { count, final } = this.#available();
        if (count >= DRAIN_CHUNK || (final && count > 0) || (count > 0 && gatherDue)) {
          buffer ??= Buffer.allocUnsafeSlow(DRAIN_CHUNK);
          const n = await this.#readInto(buffer, Math.min(count, buffer.length));
          // Bytes reported written that can't be read: fail rather than spin.
          if (n === 0) throw new Error(`reading the download at byte ${this.#position} gave nothing, though the bytes were written`);
          await sink.write(n === buffer.length ? buffer : buffer.subarray(0, n));
          onBytes?.(n);
          clearTimeout(gatherTimer);
          gatherTimer = undefined;
          gatherDue = false;
          continue;
        }
        // Bytes are waiting: give the upstream GATHER_MS to fill the buffer, then send what is there.
        if (count > 0 && gatherTimer === undefined) {
          gatherTimer = setTimeout(() => {
            gatherDue = true;
            signal();
          }, GATHER_MS);
        }
        // Nothing can fire between the check above and this line: a wake-up is never lost.
        await new Promise<void>((resolve) => (wake = resolve));
      }
      sink.end();
    } finally {
      clearTimeout(gatherTimer);
      this.#source.off('progress', signal);
      stopWaitingForClose();
      sink.done();
      this.destroy();
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#source.release();
  }
}
