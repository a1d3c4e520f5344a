// The last few megabytes a download wrote, kept as the very buffers that arrived from upstream. A reader
// keeping pace with the download is served from here (no copy, no read back from disk); one that fell
// behind reads the file. Measured: reading the temp file back cost as much CPU as writing it.
export class RecentChunks {
  readonly #limit: number;
  readonly #chunks: { offset: number; bytes: Uint8Array }[] = [];
  #held = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** Records the chunk written at `offset`; the oldest chunks are dropped beyond the limit. */
  add(offset: number, bytes: Uint8Array): void {
    this.#chunks.push({ offset, bytes });
    this.#held += bytes.byteLength;
    while (this.#held > this.#limit && this.#chunks.length > 1) this.#held -= this.#chunks.shift()!.bytes.byteLength;
  }

  /** Up to `length` bytes from `position`, without copying, if that position is still held. */
  slice(position: number, length: number): Uint8Array | undefined {
    const first = this.#chunks[0];
    if (!first || position < first.offset) return undefined;
    for (const chunk of this.#chunks) {
      const start = position - chunk.offset;
      if (start < chunk.bytes.byteLength) return chunk.bytes.subarray(start, start + Math.min(length, chunk.bytes.byteLength - start));
    }
    return undefined;
  }

  clear(): void {
    this.#chunks.length = 0;
    this.#held = 0;
  }
}
