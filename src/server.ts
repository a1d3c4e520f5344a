// Listens on every configured address and stops gracefully.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AppEnv } from './http/env.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:5000", ":5000", "5000", "[::1]:5000", "0.0.0.0:80". */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))?:?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`listen address "${text}" is not host:port`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export interface RunningServer {
  readonly addresses: readonly AddressInfo[];
  /** Stops accepting connections; resolves when open connections finished or `graceMs` passed. */
  close(graceMs: number): Promise<void>;
}

export async function listen(app: Hono<AppEnv>, addresses: readonly string[]): Promise<RunningServer> {
  const servers: Server[] = [];
  for (const text of addresses) {
    const { host, port } = parseListen(text);
    const server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s as Server)) as Server;
      s.once('error', reject);
    });
    // containerd waits up to 30 s for headers; keep idle keep-alive connections a while for reuse.
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0;
    servers.push(server);
  }
  return {
    addresses: servers.map((s) => s.address() as AddressInfo),
    close: async (graceMs) => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                s.closeAllConnections();
                resolve();
              }, graceMs);
              s.close(() => {
                clearTimeout(timer);
                resolve();
              });
              s.closeIdleConnections();
            }),
        ),
      );
    },
  };
}
