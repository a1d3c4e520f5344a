// Request ids for the access line: 12 random hex digits each, as before, but drawn from one random
// block per 512 requests instead of a crypto call per request (which showed in the hot path's profile).
//
// The block is bytes in a buffer the instance keeps, refilled in place, and each id is encoded from its
// 6 bytes. A block kept as one 6144-character hex string lived through the ~512 requests it served, i.e.
// through two young collections under load, so V8 moved every such string to the old generation, where
// it waited dead for a full collection: that was most of the old space's growth under the cached
// manifest load (~0.7 MB/s at 55k requests/s, --trace-gc-nvp: 6160 bytes promoted every few scavenges).
import { randomFillSync } from 'node:crypto';

const IDS_PER_BLOCK = 512;
const ID_BYTES = 6;

export class RequestIds {
  /** Allocated at the first id, outside V8's heap (allocUnsafeSlow: not a slice of the shared pool). */
  #block: Buffer | undefined;
  #at = IDS_PER_BLOCK * ID_BYTES;

  next(): string {
    const block = (this.#block ??= Buffer.allocUnsafeSlow(IDS_PER_BLOCK * ID_BYTES));
    if (this.#at >= block.length) {
      randomFillSync(block);
      this.#at = 0;
    }
    const id = block.toString('hex', this.#at, this.#at + ID_BYTES);
    this.#at += ID_BYTES;
    return id;
  }
}
