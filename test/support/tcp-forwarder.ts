// A plain TCP forwarder: whatever connects to it is piped to a target, like a NAT rule or a Service
// VIP in front of a host. Tests use it to hide where a connection really goes (a loop back to the
// mirror) and to see the first bytes each connection sent (the request line and Host header).
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpForwarder {
  readonly host: string;
  readonly port: number;
  /** Where new connections go from now on. */
  setTarget(target: { host: string; port: number }): void;
  /** The first chunk each connection sent, in order. */
  heads(): string[];
  close(): Promise<void>;
}

export async function startTcpForwarder(options: { host?: string; port?: number; target?: { host: string; port: number } } = {}): Promise<TcpForwarder> {
  let target = options.target;
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.once('data', (chunk: Buffer) => heads.push(chunk.toString('latin1')));
    if (!target) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    setTarget: (t) => (target = t),
    heads: () => [...heads],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
