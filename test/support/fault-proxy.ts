// A scripted HTTP proxy in front of a real upstream (usually docker-registry).
// It exists only for faults a real registry can't produce: corrupted bytes,
// connections cut mid-blob, bursts of 5xx/429 and slow links. Everything a real
// registry can do (auth, 404s, redirects, real content) must come from the real
// registry behind it.
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export type Fault =
  | 'none'
  /** Flip one byte in the middle of blob bodies (GET of paths containing /blobs/). */
  | 'flip-byte'
  /** Send half of a blob body, then destroy the socket. */
  | 'reset-mid-blob'
  /** Answer `status` to the next `times` requests of any kind, then pass through. */
  | { status: number; times: number; retryAfter?: string }
  /** Throttle every response body to this rate. */
  | { dripBytesPerSec: number };

export interface ProxiedRequest {
  method: string;
  /** The request path without its query string. */
  path: string;
  /** What the proxy answered (an injected status, or the upstream's). */
  status: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  requests(): ProxiedRequest[];
  clearRequests(): void;
  setFault(fault: Fault): void;
  stop(): Promise<void>;
}

// RFC 9110 section 7.6.1: connection-specific fields are not forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export async function startFaultProxy(targetUrl: string, options: { fault?: Fault } = {}): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  if (target.protocol !== 'http:') throw new Error(`fault proxy: only http:// targets are supported, got ${targetUrl}`);
  const agent = new Agent({ keepAlive: true });
  let fault: Fault = options.fault ?? 'none';
  let injectionsLeft = typeof fault === 'object' && 'status' in fault ? fault.times : 0;
  let log: ProxiedRequest[] = [];
  let origin = '';

  const handle = async (req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest): Promise<void> => {
    const current = fault;

    if (typeof current === 'object' && 'status' in current && injectionsLeft > 0) {
      injectionsLeft--;
      entry.status = current.status;
      req.resume();
      const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected by fault proxy', detail: null }] });
      res.writeHead(current.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(current.retryAfter !== undefined ? { 'retry-after': current.retryAfter } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }

    const upstreamReq = httpRequest({
      agent,
      host: target.hostname,
      port: target.port || 80,
      method: req.method,
      path: req.url,
      headers: withoutHopByHop(req.headers),
    });
    const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
      upstreamReq.once('response', resolve);
      upstreamReq.once('error', reject);
      pipeline(req, upstreamReq).catch(reject);
    });

    entry.status = upstreamRes.statusCode ?? 502;
    const headers = withoutHopByHop(upstreamRes.headers);
    const location = headers.location;
    if (typeof location === 'string') headers.location = rewriteLocation(location, target, origin);
    const isBlobBody =
      req.method === 'GET' && entry.path.includes('/blobs/') && (entry.status === 200 || entry.status === 206);

    res.writeHead(entry.status, headers);
    const length = Number(upstreamRes.headers['content-length'] ?? Number.NaN);
    if (current === 'flip-byte' && isBlobBody) {
      await pipeline(upstreamRes, flipByteAt(length), res);
    } else if (current === 'reset-mid-blob' && isBlobBody) {
      await pipeline(upstreamRes, cutAt(length), res);
    } else if (typeof current === 'object' && 'dripBytesPerSec' in current) {
      await pipeline(upstreamRes, drip(current.dripBytesPerSec), res);
    } else {
      await pipeline(upstreamRes, res);
    }
  };

  const server = createServer((req, res) => {
    const entry: ProxiedRequest = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] ?? '/', status: 0 };
    log.push(entry);
    handle(req, res, entry).catch(() => {
      // Upstream unreachable, a stream broke, or a cut on purpose: answer 502
      // if we still can, else make sure the connection is gone.
      if (!res.headersSent) {
        entry.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('fault proxy: upstream failed');
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
    host: `127.0.0.1:${port}`,
    port,
    requests: () => log.map((entry) => ({ ...entry })),
    clearRequests() {
      log = [];
    },
    setFault(next) {
      fault = next;
      injectionsLeft = typeof next === 'object' && 'status' in next ? next.times : 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));
}

/** Absolute redirects to the target go through the proxy instead; anything else is left alone. */
function rewriteLocation(location: string, target: URL, proxyOrigin: string): string {
  if (!/^https?:\/\//i.test(location)) return location;
  const url = new URL(location);
  return url.origin === target.origin ? `${proxyOrigin}${url.pathname}${url.search}${url.hash}` : location;
}

/** Inverts the byte at the middle of a body of `length` bytes (or of the whole body when the length is unknown). */
function flipByteAt(length: number) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    if (!Number.isFinite(length)) {
      const chunks: Buffer[] = [];
      for await (const chunk of source) chunks.push(chunk);
      const body = Buffer.concat(chunks);
      const middle = Math.floor(body.length / 2);
      if (body.length > 0) body[middle] = (body[middle] ?? 0) ^ 0xff;
      yield body;
      return;
    }
    const middle = Math.floor(length / 2);
    let offset = 0;
    for await (const chunk of source) {
      if (middle >= offset && middle < offset + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[middle - offset] = (copy[middle - offset] ?? 0) ^ 0xff;
        yield copy;
      } else {
        yield chunk;
      }
      offset += chunk.length;
    }
  };
}

/** Passes half of a body of `length` bytes, then fails, which destroys the client connection. */
function cutAt(length: number) {
  return async function* (source: AsyncIterable<Buffer>) {
    const half = Number.isFinite(length) ? Math.floor(length / 2) : 0;
    let offset = 0;
    for await (const chunk of source) {
      if (offset + chunk.length >= half) {
        yield chunk.subarray(0, half - offset);
        // Give the half a moment to reach the client before the reset.
        await sleep(20);
        throw new Error('fault proxy: connection reset mid-blob on purpose');
      }
      yield chunk;
      offset += chunk.length;
    }
  };
}

const SLICE_MS = 50;

function drip(bytesPerSec: number) {
  // Slices of SLICE_MS keep the rate smooth. Each slice waits until the moment the
  // bytes so far are due at the rate (not a sleep per slice, whose 1 ms timer rounding made the rate
  // depend on the upstream's chunk sizes: 32 KiB chunks at 50 MB/s read as ~35 MB/s), so a body never
  // gets ahead of the link, and a proxy whose timers fire late (a busy machine) catches up instead of
  // slowing the link down: a real link keeps delivering into the receiver's kernel buffers meanwhile.
  const slice = Math.max(1, Math.floor((bytesPerSec * SLICE_MS) / 1000));
  return async function* (source: AsyncIterable<Buffer>) {
    const start = performance.now();
    let sent = 0;
    for await (const chunk of source) {
      for (let offset = 0; offset < chunk.length; offset += slice) {
        const piece = chunk.subarray(offset, offset + slice);
        yield piece;
        sent += piece.length;
        const wait = start + (sent / bytesPerSec) * 1000 - performance.now();
        if (wait >= 1) await sleep(wait);
      }
    }
  };
}
