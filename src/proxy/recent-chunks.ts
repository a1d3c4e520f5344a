// The last few megabytes a download received, kept as the very buffers that arrived from upstream. A
// reader keeping pace with the download copies from here; one that fell behind reads the file.
// Measured: reading the temp file back cost as much CPU as writing it.
export class RecentChunks {
  readonly #limit: number;
  readonly #onDrop: ((bytes: Uint8Array) => void) | undefined;
  readonly #chunks: { offset: number; bytes: Uint8Array }[] = [];
  #held = 0;

  /** `onDrop` is called with each chunk once it is no longer held (its memory may then be reused). */
  constructor(limitBytes: number, onDrop?: (bytes: Uint8Array) => void) {
    this.#limit = limitBytes;
    this.#onDrop = onDrop;
  }

  /** Records the chunk written at `offset`; the oldest chunks are dropped beyond the limit. */
  add(offset: number, bytes: Uint8Array): void {
    this.#chunks.push({ offset, bytes });
    this.#held += bytes.byteLength;
    while (this.#held > this.#limit && this.#chunks.length > 1) {
      const dropped = this.#chunks.shift()!.bytes;
      this.#held -= dropped.byteLength;
      this.#onDrop?.(dropped);
    }
  }

  /**
   * Copies up to `length` bytes from `position` into `target` at `targetOffset`, as far as they are held
   * contiguously from there; undefined when `position` is not held.
   */
  copyInto(target: Uint8Array, targetOffset: number, position: number, length: number): number | undefined {
    const first = this.#chunks[0];
    if (!first || position < first.offset) return undefined;
    let copied = 0;
    for (const chunk of this.#chunks) {
      if (copied >= length) break;
      const at = position + copied;
      const start = at - chunk.offset;
      if (start < 0 || start >= chunk.bytes.byteLength) continue;
      const n = Math.min(length - copied, chunk.bytes.byteLength - start);
      target.set(chunk.bytes.subarray(start, start + n), targetOffset + copied);
      copied += n;
    }
    return copied > 0 ? copied : undefined;
  }

  clear(): void {
    for (const chunk of this.#chunks) this.#onDrop?.(chunk.bytes);
    this.#chunks.length = 0;
    this.#held = 0;
  }
}
