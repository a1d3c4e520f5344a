// The upstream HTTP client (src/upstream/http-client.ts, on undici) on the wire. The real registry always
// answers blob GETs with Content-Length in one piece (the pull tests cover that); the framings and faults
// below (a head split into single bytes, chunked coding with extensions and trailers, bodies ended by the
// connection, interim 1xx heads, short bodies, silence, TLS) come from scripted loopback servers,
// because docker-registry cannot be made to produce them while CDNs and other registries do.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, issueServerCertificate } from '../../src/tls/certificates.ts';
import { TimeoutError } from '../../src/upstream/errors.ts';
import { UpstreamHttp, type HttpClientOptions, type HttpResponse, type Timeouts } from '../../src/upstream/http-client.ts';

const TIMEOUTS = { connectMs: 2_000, responseMs: 2_000, idleMs: 2_000 };
const servers: net.Server[] = [];
const rawSockets: net.Socket[] = [];
const clients: UpstreamHttp[] = [];

/** A client for `url`'s origin (closed after the test) whose blob GET of `url` resolves with the response head. */
function clientFor(url: URL, own: Partial<HttpClientOptions['own']> = {}): (target?: URL, headers?: Record<string, string>, timeouts?: Timeouts) => Promise<HttpResponse> {
  const client = new UpstreamHttp({ origin: url.origin, connections: 8, connectMs: 2_000, own: { rejectUnauthorized: true, ...own }, otherLookup: dns.lookup });
  clients.push(client);
  return (target = url, headers = {}, timeouts = TIMEOUTS) => client.send(target, { method: 'GET', headers, timeouts, deadline: Date.now() + timeouts.responseMs, bulk: true });
}

const getOnce = (url: URL, headers: Record<string, string> = {}, timeouts: Timeouts = TIMEOUTS) => clientFor(url)(url, headers, timeouts);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  // Keep-alive: the client holds idle connections open; the servers' ends are closed here.
  for (const socket of rawSockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) {
    (server as http.Server).closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listen<T extends net.Server>(server: T): Promise<URL> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return new URL(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/v2/library/app/blobs/sha256:x`);
}

/** A raw TCP server: `respond` writes whatever it likes to the socket once the request head arrived. */
function rawServer(respond: (socket: net.Socket, request: string) => Promise<void> | void): Promise<URL> {
  return listen(
    net.createServer((socket) => {
      rawSockets.push(socket);
      let head = '';
      socket.on('error', () => {});
      socket.on('data', (data) => {
        head += data.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          const request = head;
          head = '';
          void respond(socket, request);
        }
      });
    }),
  );
}

async function readBody(res: HttpResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of res.body) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts);
}

describe('the upstream HTTP client', () => {
  it('sends one request with the headers, and reads a Content-Length body sent in pieces', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    let seen = '';
    const url = await rawServer(async (socket, request) => {
      seen = request;
      const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nX-Twice: a\r\nX-Twice: b\r\n\r\n`;
      // The head one byte at a time, then the body in uneven pieces.
      for (const byte of head) socket.write(byte);
      for (let at = 0; at < body.length; at += 100_003) socket.write(body.subarray(at, at + 100_003));
    });
    const res = await getOnce(url, { 'user-agent': 'ocimirror-test', authorization: 'Bearer t' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(body.length));
    expect(res.headers['x-twice']).toEqual(['a', 'b']);
    expect((await readBody(res)).equals(body)).toBe(true);
    expect(seen).toMatch(/^GET \/v2\/library\/app\/blobs\/sha256:x HTTP\/1\.1\r\n/);
    expect(seen.toLowerCase()).toContain(`host: ${url.host}\r\n`);
    expect(seen).toContain('authorization: Bearer t\r\n');
  });

  it('decodes chunked transfer coding, with chunk extensions and trailers', async () => {
    const body = randomBytes(600_000);
    const url = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let at = 0; at < body.length; at += 70_000) {
        const piece = body.subarray(at, at + 70_000);
        // Size line and data split across writes, an extension on every other chunk.
        socket.write(`${piece.length.toString(16)}${at % 140_000 === 0 ? ';name=value' : ''}\r`);
        socket.write('\n');
        socket.write(piece.subarray(0, 10));
        socket.write(Buffer.concat([piece.subarray(10), Buffer.from('\r\n')]));
      }
      socket.end('0\r\nX-Trailer: yes\r\n\r\n');
    });
    const res = await getOnce(url);
    expect((await readBody(res)).equals(body)).toBe(true);
  });

  it('reads a chunked body from node:http, a real server writing without a length', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const url = await listen(
      http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let at = 0; at < body.length; at += 65_536) res.write(body.subarray(at, at + 65_536));
        res.end();
      }),
    );
    const res = await getOnce(url);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(createHash('sha256').update(await readBody(res)).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('reads a body that the end of the connection delimits', async () => {
    const body = randomBytes(300_000);
    const url = await rawServer((socket) => {
      socket.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), body]));
    });
    const res = await getOnce(url);
    expect((await readBody(res)).equals(body)).toBe(true);
  });

  it('skips interim 1xx heads', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    });
    const res = await getOnce(url);
    expect(res.status).toBe(200);
    expect((await readBody(res)).toString()).toBe('hello');
  });

  it('answers a redirect or an error status with its head and (small) body', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n');
    });
    const res = await getOnce(url);
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe('http://127.0.0.1:9/elsewhere');
    expect((await readBody(res)).length).toBe(0);
  });

  it('fails the body, never ends it, when the connection closes before Content-Length bytes arrived', async () => {
    const url = await rawServer((socket) => {
      socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n'), randomBytes(400_000)]));
    });
    const res = await getOnce(url);
    await expect(readBody(res)).rejects.toThrow(/closed the connection before the end of the response/);
  });

  it('fails the body when a chunked body is cut off', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789');
    });
    const res = await getOnce(url);
    await expect(readBody(res)).rejects.toThrow(/closed the connection before the end of the response/);
  });

  it('rejects garbage instead of a response, and a bad chunk size line', async () => {
    const garbage = await rawServer((socket) => {
      socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    });
    await expect(getOnce(garbage)).rejects.toThrow(/malformed response/);
    const badChunk = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    });
    await expect(getOnce(badChunk).then(readBody)).rejects.toThrow(/malformed response/);
  });

  it('rejects a connection closed before any response', async () => {
    const url = await rawServer((socket) => {
      socket.destroy();
    });
    await expect(getOnce(url)).rejects.toThrow();
  });

  it('times out waiting for the head, and when the body goes silent', async () => {
    const timeouts = { connectMs: 1_000, responseMs: 300, idleMs: 300 };
    const silent = await rawServer(() => {});
    await expect(getOnce(silent, {}, timeouts)).rejects.toBeInstanceOf(TimeoutError);
    const stalls = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
    });
    const res = await getOnce(stalls, {}, timeouts);
    await expect(readBody(res)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('refuses a header value with a line break before connecting', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    await expect(getOnce(url, { 'x-evil': 'a\r\nInjected: yes' })).rejects.toThrow(/line break/);
  });

  it('destroying the body closes the connection', async () => {
    let closed = false;
    const url = await rawServer(async (socket) => {
      socket.on('close', () => (closed = true));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
      // Keep sending until the client goes away.
      while (!socket.destroyed) {
        if (!socket.write(randomBytes(65_536))) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      }
    });
    const res = await getOnce(url);
    for await (const _chunk of res.body) break;
    for (let i = 0; i < 50 && !closed; i++) await sleep(20);
    expect(closed).toBe(true);
  });

  it('never mixes two bodies: many GETs in a row and at once over pooled connections', async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(700_000 + i * 50_000));
    const url = await listen(
      http.createServer((req, res) => {
        const body = bodies[Number(new URL(req.url!, 'http://x').searchParams.get('i'))]!;
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }),
    );
    const client = clientFor(url);
    const get = async (i: number) => {
      const target = new URL(url);
      target.searchParams.set('i', String(i));
      return readBody(await client(target));
    };
    for (let i = 0; i < 6; i++) expect((await get(i)).equals(bodies[i]!)).toBe(true);
    const together = await Promise.all(bodies.map((_, i) => get(i)));
    together.forEach((body, i) => expect(body.equals(bodies[i]!)).toBe(true));
  });

  it('keeps connections alive: one connection for GETs in a row, a new one after Connection: close or a dropped body', async () => {
    let connections = 0;
    const server = http.createServer((req, res) => {
      const close = req.url!.includes('close');
      res.writeHead(200, { 'content-length': 100_000, ...(close ? { connection: 'close' } : {}) });
      res.end(randomBytes(100_000));
    });
    server.on('connection', () => connections++);
    const url = await listen(server);
    const client = clientFor(url);
    // The connection goes back to the pool just after the body's end was delivered: a tick later.
    const get = async (path: string) => {
      const body = await readBody(await client(new URL(path, url)));
      await sleep(5);
      return body;
    };
    for (let i = 0; i < 5; i++) expect((await get('/a')).length).toBe(100_000);
    expect(connections).toBe(1);
    expect((await get('/close')).length).toBe(100_000);
    expect((await get('/a')).length).toBe(100_000);
    expect(connections).toBe(2);
    // A body dropped halfway leaves its connection mid-response: it is closed, not reused.
    const dropped = await client(new URL('/big', url));
    dropped.body.destroy();
    expect((await get('/a')).length).toBe(100_000);
    expect(connections).toBe(3);
  });

  it('an idle connection the server closed is not reused', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 5 });
      res.end('hello');
    });
    // Node adds keepAliveTimeoutBuffer (1 s by default) to keepAliveTimeout.
    server.keepAliveTimeout = 100;
    let closedByServer = false;
    server.on('connection', (socket) => {
      connections++;
      socket.on('close', () => (closedByServer = true));
    });
    const url = await listen(server);
    const get = async () => (await readBody(await getOnce(url))).toString();
    expect(await get()).toBe('hello');
    for (let i = 0; i < 100 && !closedByServer; i++) await sleep(50);
    expect(closedByServer).toBe(true);
    expect(await get()).toBe('hello');
    expect(connections).toBe(2);
  });

  it('speaks TLS: trusts a certificate only as told, sends SNI, and resumes TLS sessions on new connections', async () => {
    const ca = createCertificateAuthority({ commonName: 'http-client test CA', validDays: 1 });
    const issued = issueServerCertificate(ca, { names: ['localhost', '127.0.0.1'], validDays: 1 });
    const handshakes: { servername: string | undefined; resumed: boolean }[] = [];
    const server = https.createServer({ cert: issued.cert, key: issued.key }, (req, res) => {
      // Connection: close on every answer, so each request needs a connection (and a handshake) of its own.
      res.writeHead(200, { 'content-length': 5, connection: 'close' });
      res.end('hello');
    });
    server.on('secureConnection', (socket) => handshakes.push({ servername: socket.servername || undefined, resumed: socket.isSessionReused() }));
    const url = await listen(server);
    await expect(getOnce(url)).rejects.toThrow(/certificate/i);
    const byName = new URL(url);
    byName.hostname = 'localhost';
    const toLoopback: HttpClientOptions['otherLookup'] = (_h, o, cb) => (o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
    handshakes.length = 0;
    const trusting = clientFor(byName, { ca: ca.cert, lookup: toLoopback });
    for (let i = 0; i < 3; i++) expect((await readBody(await trusting())).toString()).toBe('hello');
    expect(handshakes.map((h) => h.servername)).toEqual(['localhost', 'localhost', 'localhost']);
    expect(handshakes.map((h) => h.resumed)).toEqual([false, true, true]);
    const insecure = clientFor(byName, { rejectUnauthorized: false, lookup: toLoopback });
    expect((await readBody(await insecure())).toString()).toBe('hello');
  });
});
