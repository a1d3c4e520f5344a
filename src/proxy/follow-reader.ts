// A client's stream of a blob that is still arriving: it reads what the writer has put on disk so far,
// waits for more, and holds the last byte back until the digest was verified (state "committed").
// If the download fails, the stream is destroyed with its error: the client's connection breaks
// instead of ending as if the body were complete.
import { once, type EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { ByteRange } from '../store/blob-store.ts';

export type DownloadState = 'running' | 'committed' | 'failed';

/** Something being written that readers can follow; emits 'progress' whenever state or written change. */
export interface FollowSource extends EventEmitter {
  readonly state: DownloadState;
  readonly written: number;
  readonly error: Error | undefined;
  readAt(position: number, length: number): Promise<Uint8Array>;
  /** Reader reference counting: the source keeps its file open while readers remain. */
  retain(): void;
  release(): void;
}

const READ_CHUNK = 1024 * 1024;

export function createFollowReader(source: FollowSource, range?: ByteRange): Readable {
  source.retain();
  let position = range?.start ?? 0;
  const end = range ? range.end + 1 : undefined; // exclusive
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    source.release();
  };
  const stream = new Readable({
    highWaterMark: READ_CHUNK,
    async read() {
      try {
        for (;;) {
          const stop = end ?? (source.state === 'committed' ? source.written : undefined);
          if (stop !== undefined && position >= stop) {
            this.push(null);
            return;
          }
          if (source.state === 'failed') throw source.error ?? new Error('download failed');
          // Hold the last byte back until the digest was verified.
          const limit = source.state === 'committed' ? source.written : source.written - 1;
          const want = Math.min(READ_CHUNK, (stop ?? Infinity) - position, limit - position);
          if (want > 0) {
            const bytes = await source.readAt(position, want);
            position += bytes.byteLength;
            if (bytes.byteLength > 0) {
              this.push(bytes);
              return;
            }
          }
          await once(source, 'progress');
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
