// One HTTP exchange on node:http(s) with the three timeouts a proxy needs: connecting, waiting for
// response headers, and silence while the body streams.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface Timeouts {
  readonly connectMs: number;
  readonly responseMs: number;
  readonly idleMs: number;
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
