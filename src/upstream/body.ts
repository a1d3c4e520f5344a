// Reading upstream response bodies we only partly need, or need whole but small.
import type { Readable } from 'node:stream';

/** Reads a body nobody needs to its end, ignoring its errors. */
export function drain(res: Readable): void {
  res.resume();
  res.on('error', () => {});
}

/** A body we do not need beyond this is cut off (its connection closed) instead of read to its end. */
const MAX_DISCARD = 64 * 1024;

/**
 * Reads a body we do not need (a 401, a redirect, an error) to its end, so its keep-alive connection
 * goes back to the pool at once; a large one is destroyed instead, which frees the connection as well.
 */
export function discard(body: Readable): void {
  let seen = 0;
  body.on('error', () => {});
  body.on('data', (chunk: Uint8Array) => {
    seen += chunk.byteLength;
    if (seen > MAX_DISCARD) body.destroy();
  });
  body.resume();
}

/** A whole small body, or `tooLarge()` thrown (and the body destroyed) once it passes `maxBytes`. */
export async function readLimited(body: Readable, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const bytes = chunk as Buffer;
    total += bytes.byteLength;
    if (total > maxBytes) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total);
}
