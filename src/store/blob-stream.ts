// What every blob body is: a Readable (for anything that pipes or wants a web stream) that can also
// copy itself into a socket through one reused buffer. Piping allocates a fresh buffer per chunk, and
// those allocations (page faults, GC), more than the copying, held throughput to about half of nginx's
// and memory to one buffer per chunk in flight; a drain holds one buffer per client.
import type { Readable, Writable } from 'node:stream';

export interface BlobStream extends Readable {
  /**
   * Writes the rest of the blob into `dest` and ends it. Rejects when the blob can't be read to its end
   * or `dest` closes first (the caller then destroys `dest`: the client sees a broken transfer, never a
   * short body). Destroys this stream either way. Only for a stream nothing has read from yet.
   */
  drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void>;
}

/**
 * Bytes per write into the client's socket, and the one buffer a drain keeps per client. Measured on
 * loopback (bench/RESULTS.md): 512 KiB sends about 1.5x faster than 256 KiB and 2x faster than 128 KiB
 * (the cost per write, not per byte, dominates), while a second buffer to overlap reads with writes
 * gained nothing and doubled the memory (50 clients: +25 MiB per buffer).
 */
export const DRAIN_CHUNK = 512 * 1024;

/**
 * Writes chunks into a socket one at a time: write() resolves when the chunk was handed to the kernel,
 * so the caller may reuse its buffer. A write's callback never comes if the socket dies first: 'close'
 * fails the write in flight. Call done() at the end, whatever happened.
 */
export class SocketSink {
  readonly #dest: Writable;
  #failWrite: ((err: Error) => void) | undefined;
  #gone: Error | undefined;
  /** Waits that end when the connection closes (whenClosed). */
  readonly #closeListeners = new Set<() => void>();
  readonly #onClose = () => {
    this.#gone = new Error('the connection closed before the blob was sent');
    this.#failWrite?.(this.#gone);
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  };

  constructor(dest: Writable) {
    this.#dest = dest;
    dest.once('close', this.#onClose);
    if (dest.destroyed) this.#onClose();
  }

  /**
   * Calls `listener` once when the connection closes (at once if it is gone); the returned function
   * takes it back. A listener, not a promise to race: a drain waits thousands of times per blob, and
   * each Promise.race on one long-pending promise left a reaction on it until the connection closed
   * (50 clients of a cold 1 GB blob: the heap grew ~1.5 MB/s).
   */
  whenClosed(listener: () => void): () => void {
    if (this.#gone) {
      listener();
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Throws if the connection is gone. */
  check(): void {
    if (this.#gone) throw this.#gone;
  }

  write(chunk: Uint8Array): Promise<void> {
    this.check();
    return new Promise<void>((resolve, reject) => {
      this.#failWrite = reject;
      this.#dest.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  }

  end(): void {
    this.#dest.end();
  }

  done(): void {
    this.#dest.off('close', this.#onClose);
  }
}
