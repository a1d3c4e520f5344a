// Listens on every configured address and stops gracefully.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { parseListen } from './config/listen.ts';
import type { AppEnv } from './http/env.ts';

export interface RunningServer {
  readonly addresses: readonly AddressInfo[];
  /** The TLS listeners' addresses (DNS-spoof mode). */
  readonly tlsAddresses: readonly AddressInfo[];
  /** Stops accepting connections; resolves when open connections finished or `graceMs` passed. */
  close(graceMs: number): Promise<void>;
}

/** A listen address that cannot be served: in use, not this machine's, not allowed, not host:port. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

export interface TlsListen {
  readonly listen: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
}

/** Answers a request ahead of the app (routes/hot-manifests.ts); false: the app answers it. */
export interface FrontHandler {
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

export async function listen(app: Hono<AppEnv>, addresses: readonly string[], tls?: TlsListen, front?: FrontHandler): Promise<RunningServer> {
  const servers: (Server | HttpsServer)[] = [];
  const tlsOptions = tls?.listen.length ? readCertificate(tls) : undefined;
  const plain = addresses.map((text) => ({ text, tls: false }));
  const secure = (tls?.listen ?? []).map((text) => ({ text, tls: true }));
  const close = async (graceMs: number) => {
    await Promise.all(servers.map((s) => closeServer(s, graceMs)));
  };
  for (const { text, tls: isTls } of [...plain, ...secure]) {
    try {
      const { host, port } = parseListen(text);
      const server = await new Promise<Server | HttpsServer>((resolve, reject) => {
        const create = (isTls ? createHttpsServer : createHttpServer) as (options: ServerOptions, listener: RequestListener) => Server;
        const options = {
          fetch: app.fetch,
          hostname: host,
          port,
          createServer: (serverOptions: ServerOptions, listener: RequestListener) => create(serverOptions, front ? inFrontOf(front, listener) : listener),
          ...(isTls ? { serverOptions: tlsOptions } : {}),
        };
        // Typed for one of node-server's three server kinds; this createServer has node:http's shape.
        const s = serve(options as unknown as Parameters<typeof serve>[0], () => resolve(s)) as Server | HttpsServer;
        s.once('error', reject);
      });
      // containerd waits up to 30 s for headers; keep idle keep-alive connections a while for reuse.
      server.keepAliveTimeout = 65_000;
      server.requestTimeout = 0;
      servers.push(server);
    } catch (err) {
      // Nothing half-started: the listeners already open are closed again.
      await close(0);
      throw new ListenError(`cannot listen on ${text}: ${listenProblem(err)}`, { cause: err });
    }
  }
  return {
    addresses: servers.slice(0, plain.length).map((s) => s.address() as AddressInfo),
    tlsAddresses: servers.slice(plain.length).map((s) => s.address() as AddressInfo),
    close,
  };
}

function inFrontOf(front: FrontHandler, listener: RequestListener): RequestListener {
  return function frontListener(req, res) {
    front.handle(req, res).then(
      (answered) => answered || listener(req, res),
      () => (res.headersSent ? res.destroy() : listener(req, res)),
    );
  };
}

function closeServer(s: Server | HttpsServer, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      s.closeAllConnections();
      resolve();
    }, graceMs);
    // Keep-alive connections go idle when their response ends: close them as they do.
    const sweeper = setInterval(() => s.closeIdleConnections(), 100);
    s.close(() => {
      clearTimeout(timer);
      clearInterval(sweeper);
      resolve();
    });
    s.closeIdleConnections();
  });
}

const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the address is in use by another program (find it with `ss -ltnp`)',
  EADDRNOTAVAIL: 'the address is not one of this machine\'s',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
  ENOTFOUND: 'the host name does not resolve',
};

function listenProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && LISTEN_PROBLEMS[code] ? `${LISTEN_PROBLEMS[code]} (${code})` : (err as Error).message;
}

function readCertificate(tls: TlsListen): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  } catch (err) {
    throw new ListenError(`cannot read the TLS certificate for tls.listen (${(err as Error).message}); create it with \`ocimirror tls init\``, { cause: err });
  }
}
