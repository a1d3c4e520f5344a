// Request bodies, streamed: under @hono/node-server straight from the socket (no web-stream
// conversion for gigabyte layers), elsewhere (tests through app.request) from the web stream.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { OciError } from '../oci/errors.ts';

export function requestBody(c: Context): AsyncIterable<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) return incoming;
  const body = c.req.raw.body;
  return body ?? (async function* () {})();
}

/** Whether the request announces a body (a final PUT may carry the last chunk, or none). */
export function hasBody(c: Context): boolean {
  const length = c.req.header('content-length');
  if (length !== undefined) return Number(length) > 0;
  return c.req.header('transfer-encoding') !== undefined;
}

/** A small body (a manifest), refused with 413 once it is over `max` bytes. */
export async function readSmallBody(c: Context, max: number, what: string): Promise<Uint8Array> {
  const tooLarge = () => new OciError('MANIFEST_INVALID', `${what} is larger than ${max} bytes`, { status: 413, detail: { limit: max } });
  if (Number(c.req.header('content-length') ?? 0) > max) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of requestBody(c)) {
    total += chunk.byteLength;
    if (total > max) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
