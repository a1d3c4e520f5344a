import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. The port is released
 * before returning, so another process could take it; on loopback in a test
 * run that race is rare enough to accept.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: server has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/**
 * A free TCP port on 127.0.0.1 for a listener that starts long after the port is chosen (a daemon
 * configured minutes before the container it points at exists). It lies below the kernel's
 * ephemeral range, which is where every `freePort()` and every outgoing connection gets its
 * port, so no other test can be handed it in the meantime; CI once lost the packaging test's
 * mirror port that way (EADDRINUSE after the image build).
 */
export async function portOutsideEphemeralRange(): Promise<number> {
  const low = ephemeralRangeStart();
  const floor = 10_000;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    if (await canListen(port)) return port;
  }
  throw new Error(`portOutsideEphemeralRange: no free port between ${floor} and ${low} after 50 tries`);
}

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
