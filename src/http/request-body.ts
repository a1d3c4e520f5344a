// Request bodies, streamed: under @hono/node-server straight from the socket (no web-stream
// conversion for gigabyte layers), elsewhere (tests through app.request) from the web stream.
//
// node's HTTP parser hands every body chunk over as a fresh 64 KiB buffer. Those die young, but V8
// collects ArrayBuffer garbage only when a scavenge happens, and the small JS objects wrapping them fill
// the young generation slowly: between collections tens of MiB of dead chunks stay resident (a 1 GB
// push peaked ~75 MiB above idle). A minor GC every few MiB of body frees them as they go, for
// well under a millisecond each (bench/RESULTS.md has the measurements).
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Context } from 'hono';
import { OciError } from '../oci/errors.ts';

/** Body bytes between two young-generation collections. */
const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

/** V8's collector, reachable without a command-line flag (every launcher gets it). */
const collect: (options: { type: 'minor' }) => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as (options: { type: 'minor' }) => void;
})();

async function* collectingAsItGoes(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let since = 0;
  for await (const chunk of body) {
    yield chunk;
    since += chunk.byteLength;
    if (since >= COLLECT_EVERY_BYTES) {
      since = 0;
      collect({ type: 'minor' });
    }
  }
}

export function requestBody(c: Context): AsyncIterable<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) return collectingAsItGoes(incoming);
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
