// A positioned read that keeps reading until it has `length` bytes or the file ends (one read may
// return fewer bytes than asked).
import type { FileHandle } from 'node:fs/promises';

/** Copies up to `length` bytes at `position` into `target` at `targetOffset`; resolves with the count. */
export async function readFully(handle: FileHandle, target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(target, targetOffset + filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}
