// One HTTP exchange on node:http(s) with the three timeouts a proxy needs: connecting, waiting for
// response headers, and silence while the body streams.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface Timeouts {
  readonly connectMs: number;
  readonly responseMs: number;
  readonly idleMs: number;
  /**
   * Blob bodies (bulk-get.ts): fewer bytes than this rate allows in an `idleMs` period (not counting
   * time the reader held the body back) end the download, so a drip of 1 B/s cannot hold it forever.
   */
  readonly minBytesPerSecond?: number;
}

export interface SendOptions {
  readonly method: 'GET' | 'HEAD';
  readonly headers: OutgoingHttpHeaders;
  readonly agent: http.Agent;
  readonly timeouts: Timeouts;
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** Resolves with the response once its headers arrived; the body is left for the caller to read or destroy. */
export function sendRequest(url: URL, options: SendOptions): Promise<IncomingMessage> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method: options.method, headers: options.headers, agent: options.agent });
    const fail = (err: Error) => {
      clearTimeout(responseTimer);
      req.destroy(err);
      reject(err);
    };
    const responseTimer = setTimeout(
      () => fail(new TimeoutError(`no response headers from ${url.host} within ${options.timeouts.responseMs} ms`)),
      options.timeouts.responseMs,
    );
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const connectTimer = setTimeout(() => fail(new TimeoutError(`could not connect to ${url.host} within ${options.timeouts.connectMs} ms`)), options.timeouts.connectMs);
      socket.once('connect', () => clearTimeout(connectTimer));
      socket.once('close', () => clearTimeout(connectTimer));
    });
    req.on('error', (err) => {
      clearTimeout(responseTimer);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(responseTimer);
      const socket = res.socket;
      const onIdle = () => res.destroy(new TimeoutError(`upstream ${url.host} sent nothing for ${options.timeouts.idleMs} ms`));
      socket.setTimeout(options.timeouts.idleMs);
      socket.on('timeout', onIdle);
      // Keep-alive sockets serve many responses: detach this one's watchdog when it is done.
      res.once('close', () => {
        socket.off('timeout', onIdle);
        socket.setTimeout(0);
      });
      resolve(res);
    });
    req.end();
  });
}

export function drain(res: Readable): void {
  res.resume();
  res.on('error', () => {});
}

/** A body we do not need beyond this is cut off (its connection closed) instead of read to its end. */
const MAX_DISCARD = 64 * 1024;

/**
 * Reads a body we do not need (a 401, a redirect, an error) to its end, so its keep-alive socket goes
 * back to the pool at once; a large one is destroyed instead, which frees the socket slot as well.
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
