// Sends a Node stream as a response body. Under @hono/node-server it goes straight into the socket (no
// web-stream conversion on the hot path): a body that can drain itself (the disk store's blob files, which
// reuse two buffers) does so, anything else is piped. Elsewhere (tests through app.request) it becomes a
// web stream. If the body fails after the headers went out, the connection is destroyed: the client sees a
// broken transfer, never a short body that looks complete.
import type { ServerResponse } from 'node:http';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

/** A body that copies itself into a writable and ends it, more cheaply than a pipe would. */
interface DrainableBody {
  drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void>;
}

function isDrainable(body: Readable): body is Readable & DrainableBody {
  return typeof (body as Partial<DrainableBody>).drainInto === 'function';
}

/** `headers` must be complete (including registry headers): they are all the client gets. */
export function sendStream(c: Context, status: number, headers: Record<string, string>, body: Readable, onBytes?: (count: number) => void): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  const countData = () => {
    if (onBytes) body.on('data', (chunk: Buffer) => onBytes(chunk.byteLength));
  };
  if (!outgoing) {
    countData();
    return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
  }
  // Headers set earlier with c.header() are not visible here without c.res, and touching c.res would make
  // Hono rebuild the response and @hono/node-server write it a second time: callers pass every header.
  outgoing.writeHead(status, headers);
  let sent: Promise<void>;
  if (isDrainable(body)) {
    sent = body.drainInto(outgoing, onBytes);
  } else {
    countData();
    sent = pipeline(body, outgoing);
  }
  sent.catch(() => {
    body.destroy();
    outgoing.destroy();
  });
  return RESPONSE_ALREADY_SENT;
}
