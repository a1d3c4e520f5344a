// Sends a blob as a response body. Under @hono/node-server it drains straight into the socket (no
// web-stream conversion on the hot path, one reused buffer per client: see store/blob-stream.ts).
// Elsewhere (tests through app.request) it becomes a web stream. If the body fails after the headers went
// out, the connection is destroyed: the client sees a broken transfer, never a short body that looks complete.
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { BlobStream } from '../store/blob-stream.ts';

/** `headers` must be complete (including registry headers): they are all the client gets. */
export function sendStream(c: Context, status: number, headers: Record<string, string>, body: BlobStream, onBytes?: (count: number) => void): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) {
    if (onBytes) body.on('data', (chunk: Buffer) => onBytes(chunk.byteLength));
    return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
  }
  // Headers set earlier with c.header() are not visible here without c.res, and touching c.res would make
  // Hono rebuild the response and @hono/node-server write it a second time: callers pass every header.
  outgoing.writeHead(status, headers);
  body.drainInto(outgoing, onBytes).catch(() => {
    body.destroy();
    outgoing.destroy();
  });
  return RESPONSE_ALREADY_SENT;
}
