// Blob answers whose framing is ambiguous (issue 14, item 1). docker-registry always frames a blob by
// Content-Length alone, so the upstreams here are scripted loopback servers: only they can send both
// Content-Length and Transfer-Encoding, a field name followed by whitespace, or a repeated length.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import net, { type AddressInfo } from 'node:net';
import { UpstreamHttp } from '../../src/upstream/http-client.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';

const TIMEOUTS = { connectMs: 2_000, responseMs: 2_000, idleMs: 2_000 };
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A raw TCP upstream: `respond` gets each request head and writes whatever bytes it likes. */
async function scriptedUpstream(respond: (socket: net.Socket, request: string) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (data) => {
      head += data.toString('latin1');
      while (head.includes('\r\n\r\n')) {
        const end = head.indexOf('\r\n\r\n') + 4;
        respond(socket, head.slice(0, end));
        head = head.slice(end);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function mirrorOf(upstreamUrl: string): Promise<RunningMirror> {
  const mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: upstreamUrl, aliases: ['docker.io'], default: true }], upstreamRetries: 0 });
  cleanups.push(() => mirror.dispose());
  return mirror;
}

interface WireResponse {
  readonly status: number;
  readonly head: string;
  readonly body: Buffer;
}

/** Reads HTTP/1.1 responses off one client connection exactly as their heads frame them. */
class Connection {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(url: string) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect(Number(port), hostname);
    this.socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#wake?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    cleanups.push(() => void this.socket.destroy());
  }

  send(path: string): void {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  }

  async #until(ready: () => boolean): Promise<boolean> {
    while (!ready()) {
      if (this.#closed) return false;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return true;
  }

  /** The next response, or undefined if the connection closed first. */
  async next(): Promise<WireResponse | undefined> {
    if (!(await this.#until(() => this.#buffer.includes('\r\n\r\n')))) return undefined;
    const headEnd = this.#buffer.indexOf('\r\n\r\n') + 4;
    const head = this.#buffer.toString('latin1', 0, headEnd);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let body: Buffer;
    if (length) {
      const end = headEnd + Number(length[1]);
      if (!(await this.#until(() => this.#buffer.length >= end))) return undefined;
      body = this.#buffer.subarray(headEnd, end);
      this.#buffer = this.#buffer.subarray(end);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      if (!(await this.#until(() => this.#buffer.includes('\r\n0\r\n\r\n', headEnd - 2)))) return undefined;
      const end = this.#buffer.indexOf('\r\n0\r\n\r\n', headEnd - 2) + 7;
      body = this.#buffer.subarray(headEnd, end);
      this.#buffer = this.#buffer.subarray(end);
    } else {
      throw new Error(`response without framing: ${head}`);
    }
    return { status, head, body };
  }
}

const DIGEST = `sha256:${'ab'.repeat(32)}`;
/** What the upstream wants a second response on the client's connection to be. */
const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Injected: yes\r\n\r\ninjected';

describe.each([
  ['Content-Length and Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
  ['Content-Length and "Transfer-Encoding : chunked" (whitespace before the colon)', 'Transfer-Encoding : chunked'],
])('an upstream blob answer with %s', (_, encodingLine) => {
  it('never reaches the client as a length followed by other bytes', async () => {
    // Ten bytes announced, then a chunked body that carries a whole second response after them, and
    // is left open (no last chunk): the download is still running while clients stream what arrived.
    const payload = Buffer.from(`0123456789${SMUGGLED}!`, 'latin1');
    const upstream = await scriptedUpstream((socket, request) => {
      if (!request.includes('/blobs/')) return void socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n${encodingLine}\r\n\r\n${payload.length.toString(16)}\r\n`);
      socket.write(Buffer.concat([payload, Buffer.from('\r\n')]));
    });
    const mirror = await mirrorOf(upstream);
    const client = new Connection(mirror.url);
    client.send(`/v2/library/app/blobs/${DIGEST}`);
    const first = await client.next();
    expect(first, 'the mirror closed the connection instead of answering').toBeDefined();
    // The same connection carries the next answer intact: nothing the upstream chose came in between.
    client.send('/v2/');
    const second = await client.next();
    expect(second, 'the connection broke after the first answer').toBeDefined();
    expect(second!.head).not.toMatch(/x-injected/i);
    expect(second!.status).toBe(200);
    expect(second!.head).toMatch(/docker-distribution-api-version: registry\/2\.0/i);
    expect(first!.status).toBe(502);
    expect(first!.body.toString()).toContain('UNAVAILABLE');
  });
});

async function readAll(res: { body: AsyncIterable<unknown> }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** A blob GET of `url` by the upstream HTTP client, closed after the test. */
function blobGet(url: URL) {
  const client = new UpstreamHttp({ origin: url.origin, connections: 4, connectMs: 2_000, own: { rejectUnauthorized: true }, otherLookup: dns.lookup });
  cleanups.push(() => client.close());
  return client.send(url, { method: 'GET', headers: {}, timeouts: TIMEOUTS, deadline: Date.now() + TIMEOUTS.responseMs, bulk: true });
}

describe('blob GET framing (RFC 9112)', () => {
  it('refuses a response with both Transfer-Encoding and Content-Length', async () => {
    const url = await scriptedUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'));
    await expect(blobGet(new URL('/b', url)).then(readAll)).rejects.toThrow(/malformed response/);
  });

  it('refuses a field name followed by whitespace, instead of reading it as Transfer-Encoding', async () => {
    const url = await scriptedUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'));
    await expect(blobGet(new URL('/b', url)).then(readAll)).rejects.toThrow(/malformed response/);
  });

  it('refuses a repeated Content-Length (RFC 9110 8.6 lets a recipient reject it or take it as one)', async () => {
    const url = await scriptedUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'));
    await expect(blobGet(new URL('/b', url)).then(readAll)).rejects.toThrow(/malformed response/);
  });
});

describe('a blob answer with its Content-Length repeated', () => {
  // undici's HTTP/1.1 parser refuses it, as RFC 9110 8.6 allows: the client gets a clean 502, never a
  // blob whose length two fields disagree about, and nothing is cached.
  it('is refused cleanly, and nothing is cached', async () => {
    const blob = randomBytes(50_000);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const upstream = await scriptedUpstream((socket, request) => {
      if (!request.includes(`/blobs/${digest}`)) return void socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\nContent-Length: ${blob.length}\r\n\r\n`);
      socket.write(blob);
    });
    const mirror = await mirrorOf(upstream);
    const res = await fetch(`${mirror.url}/v2/library/app/blobs/${digest}`);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('UNAVAILABLE');
    await mirror.runtime.idle();
    expect(await mirror.runtime.deps.blobs.stat(digest)).toBeUndefined();
  });
});
