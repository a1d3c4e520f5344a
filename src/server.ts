// Listens on every configured address and stops gracefully.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
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

export interface TlsListen {
  readonly listen: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
}

export async function listen(app: Hono<AppEnv>, addresses: readonly string[], tls?: TlsListen): Promise<RunningServer> {
  const servers: (Server | HttpsServer)[] = [];
  const tlsOptions = tls?.listen.length ? readCertificate(tls) : undefined;
  const plain = addresses.map((text) => ({ text, tls: false }));
  const secure = (tls?.listen ?? []).map((text) => ({ text, tls: true }));
  for (const { text, tls: isTls } of [...plain, ...secure]) {
    const { host, port } = parseListen(text);
    const server = await new Promise<Server | HttpsServer>((resolve, reject) => {
      const options = { fetch: app.fetch, hostname: host, port };
      const https = { createServer: createHttpsServer, serverOptions: tlsOptions };
      const s = serve(isTls ? { ...options, ...https } : options, () => resolve(s)) as Server | HttpsServer;
      s.once('error', reject);
    });
    // containerd waits up to 30 s for headers; keep idle keep-alive connections a while for reuse.
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0;
    servers.push(server);
  }
  return {
    addresses: servers.slice(0, plain.length).map((s) => s.address() as AddressInfo),
    tlsAddresses: servers.slice(plain.length).map((s) => s.address() as AddressInfo),
    close: async (graceMs) => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
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
            }),
        ),
      );
    },
  };
}

function readCertificate(tls: TlsListen): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  } catch (err) {
    throw new Error(`cannot read the TLS certificate for tls.listen (${(err as Error).message}); create it with \`ocimirror tls init\``, { cause: err });
  }
}
