import { createCipheriv, createHash } from 'node:crypto';

const CHUNK = 1024 * 1024;

/**
 * `size` incompressible bytes, identical for identical seeds: the AES-256-CTR
 * keystream under a key derived from the seed. AES-NI makes this run at
 * several GB/s, and chunks are produced on demand, so 1 GB costs 1 MB of memory.
 */
export async function* seededBytes(seed: string, size: number): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(`ocimirror-test-bytes:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = size; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
  }
}
