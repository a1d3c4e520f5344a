// A client connection for drainInto tests: collects what it is sent, copied as a socket's kernel buffer
// would (a drain reuses its send buffer once a write completed).
import { PassThrough } from 'node:stream';

export function drainClient(): { socket: PassThrough; received: () => Buffer } {
  const socket = new PassThrough();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
  return { socket, received: () => Buffer.concat(chunks) };
}
