// Request ids for the access line: 12 random hex digits each, drawn from one random block per 32
// requests instead of a crypto call per request (which showed in the hot path's profile).
//
// The block is small on purpose: under load it is used up within a millisecond and dies young. A block
// of 512 ids (one 6144-character string) lived through two young collections, so V8 moved every such
// string to the old generation, where it waited dead for a full collection: that was most of the old
// space's growth under the cached manifest load (~0.7 MB/s at 55k requests/s; --trace-gc-nvp showed
// 6160 bytes promoted every few scavenges). The random bytes go into a buffer the instance keeps.
import { randomFillSync } from 'node:crypto';

const IDS_PER_BLOCK = 32;
const ID_CHARS = 12;

export class RequestIds {
  /** Allocated at the first id, outside V8's heap (allocUnsafeSlow: not a slice of the shared pool). */
  #bytes: Buffer | undefined;
  #block = '';
  #at = 0;

  next(): string {
    if (this.#at >= this.#block.length) {
      const bytes = (this.#bytes ??= Buffer.allocUnsafeSlow((IDS_PER_BLOCK * ID_CHARS) / 2));
      this.#block = randomFillSync(bytes).toString('hex');
      this.#at = 0;
    }
    const id = this.#block.slice(this.#at, this.#at + ID_CHARS);
    this.#at += ID_CHARS;
    return id;
  }
}
