// The send buffers of blob drains, reused. A drain holds one DRAIN_CHUNK buffer per client; allocated
// per drain, each finished drain left its buffer for V8's next full collection, and a burst of cached
// downloads (the bench's throughput rows: dozens of drains) left tens of MiB of them waiting, which
// glibc then kept as heap after they were freed. Reused, a burst costs what its concurrency needs.
import { DRAIN_CHUNK } from './blob-stream.ts';

/** Idle buffers kept for the next drains (8 x 512 KiB = 4 MiB); more are left to the collector. */
const KEEP_IDLE = 8;

export class DrainBuffers {
  readonly #idle: Buffer[] = [];

  /** A DRAIN_CHUNK buffer for one drain, with undefined bytes. */
  take(): Buffer {
    return this.#idle.pop() ?? Buffer.allocUnsafeSlow(DRAIN_CHUNK);
  }

  /**
   * Hands a drain's buffer back. Only once nothing refers to its bytes any more: after the drain's last
   * write completed (a drain that failed drops its buffer instead). Only DRAIN_CHUNK buffers are kept:
   * a drain of a shorter rest may give back the smaller buffer it allocated for it, which is dropped.
   */
  give(buffer: Buffer): void {
    if (buffer.length === DRAIN_CHUNK && this.#idle.length < KEEP_IDLE) this.#idle.push(buffer);
  }

  /** Idle buffers held (for tests). */
  get idle(): number {
    return this.#idle.length;
  }
}
