// Request bodies, streamed: under @hono/node-server straight from the socket (no web-stream
// conversion for gigabyte layers), elsewhere (tests through app.request) from the web stream.
//
// node's HTTP parser hands every body chunk over as a buffer of its own, which V8 frees only when a
// collection finds it dead; the small JS objects wrapping them fill the young generation slowly, so
// between collections tens of MiB of dead chunks stayed resident (a 1 GB push peaked ~75 MiB above
// idle). An upload copies each chunk into its file writer before it asks for the next: the chunk is
// freed then (src/store/release-bytes.ts).
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { OciError } from '../oci/errors.ts';
import { release } from '../store/release-bytes.ts';

async function* freedAsTheyGo(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    yield chunk;
    release(chunk);
  }
}

/** The socket's body under @hono/node-server, undefined elsewhere. */
function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

function webBody(c: Context): AsyncIterable<Uint8Array> {
  return c.req.raw.body ?? (async function* () {})();
}

/**
 * The body as it arrives, for a consumer that copies each chunk before it asks for the next (an upload
 * session): a chunk is freed then. A body to keep whole is readSmallBody's.
 */
export function requestBody(c: Context): AsyncIterable<Uint8Array> {
  const incoming = incomingOf(c);
  return incoming ? freedAsTheyGo(incoming) : webBody(c);
}

/** The body's chunks, kept by whoever reads them. */
function arriving(c: Context): AsyncIterable<Uint8Array> {
  return incomingOf(c) ?? webBody(c);
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
  for await (const chunk of arriving(c)) {
    total += chunk.byteLength;
    if (total > max) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
