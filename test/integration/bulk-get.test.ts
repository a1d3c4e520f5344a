// The blob GET client (src/upstream/bulk-get.ts) on the wire. The real registry always answers blob
// GETs with Content-Length in one piece (the pull tests cover that); the framings and faults below
// (a head split into single bytes, chunked coding with extensions and trailers, bodies ended by the
// connection, interim 1xx heads, short bodies, silence, TLS) come from scripted loopback servers,
// because docker-registry cannot be made to produce them while CDNs and other registries do.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, issueServerCertificate } from '../../src/tls/certificates.ts';
import { bulkGet, type BulkResponse } from '../../src/upstream/bulk-get.ts';
import { TimeoutError } from '../../src/upstream/http-request.ts';

const TIMEOUTS = { connectMs: 2_000, responseMs: 2_000, idleMs: 2_000 };
const servers: net.Server[] = [];
const rawSockets: net.Socket[] = [];

afterEach(async () => {
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

/** Reads the whole body, releasing every chunk after copying it (as the blob download does). */
async function readBody(res: BulkResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of res.body) {
    parts.push(Buffer.from(chunk as Buffer));
    res.release(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

describe('bulk GET', () => {
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
    const res = await bulkGet(url, { 'user-agent': 'ocimirror-test', authorization: 'Bearer t' }, { rejectUnauthorized: true }, TIMEOUTS);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(body.length));
    expect(res.headers['x-twice']).toBe('a, b');
    expect((await readBody(res)).equals(body)).toBe(true);
    expect(seen).toMatch(/^GET \/v2\/library\/app\/blobs\/sha256:x HTTP\/1\.1\r\n/);
    expect(seen).toContain(`Host: ${url.host}\r\n`);
    expect(seen).toContain('authorization: Bearer t\r\n');
    expect(seen).not.toMatch(/connection:/i);
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
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
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
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(createHash('sha256').update(await readBody(res)).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('reads a body that the end of the connection delimits', async () => {
    const body = randomBytes(300_000);
    const url = await rawServer((socket) => {
      socket.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), body]));
    });
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    expect((await readBody(res)).equals(body)).toBe(true);
  });

  it('skips interim 1xx heads', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    });
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    expect(res.status).toBe(200);
    expect((await readBody(res)).toString()).toBe('hello');
  });

  it('answers a redirect or an error status with its head and (small) body', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n');
    });
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe('http://127.0.0.1:9/elsewhere');
    expect((await readBody(res)).length).toBe(0);
  });

  it('fails the body, never ends it, when the connection closes before Content-Length bytes arrived', async () => {
    const url = await rawServer((socket) => {
      socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n'), randomBytes(400_000)]));
    });
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    await expect(readBody(res)).rejects.toThrow(/closed the connection after 400000 body bytes/);
  });

  it('fails the body when a chunked body is cut off', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789');
    });
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    await expect(readBody(res)).rejects.toThrow(/middle of a chunked body/);
  });

  it('rejects garbage instead of a response, and a bad chunk size line', async () => {
    const garbage = await rawServer((socket) => {
      socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    });
    await expect(bulkGet(garbage, {}, { rejectUnauthorized: true }, TIMEOUTS)).rejects.toThrow(/bad status line/);
    const badChunk = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    });
    // Found in the same read as the head: the request itself fails (later, the body would).
    await expect(bulkGet(badChunk, {}, { rejectUnauthorized: true }, TIMEOUTS).then(readBody)).rejects.toThrow(/bad chunk size line/);
  });

  it('rejects a connection closed before any response', async () => {
    const url = await rawServer((socket) => {
      socket.destroy();
    });
    await expect(bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS)).rejects.toThrow();
  });

  it('times out waiting for the head, and when the body goes silent', async () => {
    const timeouts = { connectMs: 1_000, responseMs: 300, idleMs: 300 };
    const silent = await rawServer(() => {});
    await expect(bulkGet(silent, {}, { rejectUnauthorized: true }, timeouts)).rejects.toBeInstanceOf(TimeoutError);
    const stalls = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
    });
    const res = await bulkGet(stalls, {}, { rejectUnauthorized: true }, timeouts);
    await expect(readBody(res)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('refuses a header value with a line break before connecting', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    expect(() => bulkGet(url, { 'x-evil': 'a\r\nInjected: yes' }, { rejectUnauthorized: true }, TIMEOUTS)).toThrow(/line break/);
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
    const res = await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS);
    for await (const chunk of res.body) {
      res.release(chunk as Buffer);
      break;
    }
    for (let i = 0; i < 50 && !closed; i++) await sleep(20);
    expect(closed).toBe(true);
  });

  it('reused read buffers never mix two bodies: many GETs in a row and at once, each released as it is read', async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(700_000 + i * 50_000));
    const url = await listen(
      http.createServer((req, res) => {
        const body = bodies[Number(new URL(req.url!, 'http://x').searchParams.get('i'))]!;
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }),
    );
    const get = async (i: number) => {
      const target = new URL(url);
      target.searchParams.set('i', String(i));
      return readBody(await bulkGet(target, {}, { rejectUnauthorized: true }, TIMEOUTS));
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
    const get = async (path: string) => readBody(await bulkGet(new URL(path, url), {}, { rejectUnauthorized: true }, TIMEOUTS));
    for (let i = 0; i < 5; i++) expect((await get('/a')).length).toBe(100_000);
    expect(connections).toBe(1);
    expect((await get('/close')).length).toBe(100_000);
    expect((await get('/a')).length).toBe(100_000);
    expect(connections).toBe(2);
    // A body dropped halfway leaves its connection mid-response: it is closed, not reused.
    const dropped = await bulkGet(new URL('/big', url), {}, { rejectUnauthorized: true }, TIMEOUTS);
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
    const get = async () => (await readBody(await bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS))).toString();
    expect(await get()).toBe('hello');
    for (let i = 0; i < 100 && !closedByServer; i++) await sleep(50);
    expect(closedByServer).toBe(true);
    expect(await get()).toBe('hello');
    expect(connections).toBe(2);
  });

  it('speaks TLS: trusts a certificate only as told, and sends SNI', async () => {
    const ca = createCertificateAuthority({ commonName: 'bulk-get test CA', validDays: 1 });
    const issued = issueServerCertificate(ca, { names: ['localhost', '127.0.0.1'], validDays: 1 });
    let servername: string | undefined;
    const server = https.createServer({ cert: issued.cert, key: issued.key }, (_req, res) => {
      res.writeHead(200, { 'content-length': 5 });
      res.end('hello');
    });
    server.on('secureConnection', (socket) => (servername = socket.servername || undefined));
    const url = await listen(server);
    await expect(bulkGet(url, {}, { rejectUnauthorized: true }, TIMEOUTS)).rejects.toThrow(/certificate/i);
    const byName = new URL(url);
    byName.hostname = 'localhost';
    const res = await bulkGet(byName, {}, { rejectUnauthorized: false, lookup: (_h, o, cb) => (o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) }, TIMEOUTS);
    expect((await readBody(res)).toString()).toBe('hello');
    expect(servername).toBe('localhost');
  });
});
