// A GET for a large body that is read once (a blob): a connection whose socket reads straight into
// 256 KiB slabs, the body a stream of views on them. node:http gives every 64 KiB read a fresh
// allocation and its parser copies each body chunk once more; on a cold pull (perf, 5 x 20 MB layers)
// those copies, their page faults and the major GCs the external memory churn set off were a third of
// the mirror's CPU. Here nothing is copied, slabs are reused once the consumer released every view on
// one (slab-pool.ts; a view never released just keeps its slab from being reused), and the socket
// pauses while the reader lags (backpressure). HTTP/1.1; connections are kept alive and reused when a
// response ended cleanly, as node:http's agent would (a TLS handshake per blob would cost round trips).
import type { IncomingHttpHeaders } from 'node:http';
import net, { type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { TimeoutError, type Timeouts } from './http-request.ts';
import { SlabPool } from './slab-pool.ts';

/** Where to connect (the URL still gives the Host header and the TLS server name). */
export interface ConnectTarget {
  readonly port?: number;
  readonly lookup?: LookupFunction;
  /** For https: whether the certificate must be trusted. */
  readonly rejectUnauthorized: boolean;
}

export interface BulkResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body; read it to the end or destroy it. Fails with the connection's error if it ends early. */
  readonly body: Readable;
  /** Call once with each body chunk you no longer need (nor anything pointing into it): its memory is reused. */
  readonly release: (chunk: Uint8Array) => void;
}

export class UpstreamProtocolError extends Error {
  override readonly name = 'UpstreamProtocolError';
  readonly code = 'HPE_INVALID';
}

/** A slab with less room than this left is retired: the next read goes to another one. */
const MIN_READ = 32 * 1024;
/** Shared by all bulk GETs of the process: 16 MiB of free slabs at most. */
const slabs = new SlabPool(256 * 1024, 64);
const release = (chunk: Uint8Array) => slabs.release(chunk);
const MAX_HEAD = 64 * 1024;
/** The body buffers this much before the socket pauses. */
const BODY_HIGH_WATER = 4 * 1024 * 1024;

/** Idle keep-alive connections, by origin and connect target: blob after blob reuses them. */
const idle = new Map<string, Connection[]>();
const MAX_IDLE_PER_KEY = 8;
const IDLE_MS = 30_000;
const lookupIds = new WeakMap<LookupFunction, number>();
let lookupCount = 0;

function poolKey(url: URL, target: ConnectTarget): string {
  let lookup = '';
  if (target.lookup) {
    if (!lookupIds.has(target.lookup)) lookupIds.set(target.lookup, ++lookupCount);
    lookup = String(lookupIds.get(target.lookup));
  }
  return `${url.protocol}//${url.host}|${target.port ?? ''}|${target.rejectUnauthorized}|${lookup}`;
}

export function bulkGet(url: URL, headers: Readonly<Record<string, string>>, target: ConnectTarget, timeouts: Timeouts): Promise<BulkResponse> {
  const request = requestHead(url, headers);
  const key = poolKey(url, target);
  let connection: Connection | undefined;
  while ((connection = idle.get(key)?.pop()) && connection.closed);
  if (connection) connection.leaveIdle();
  return (connection ?? new Connection(url, target, key)).send(url, request, timeouts);
}

/** One response on a connection: its parser, body and timers. */
interface Exchange {
  onBytes(view: Buffer): boolean;
  fail(err: Error): void;
  onClose(): void;
}

/**
 * A connection to the upstream whose socket reads into slabs. It serves one exchange at a time and goes
 * back to the idle pool when a response ended cleanly (framed by length or chunks, HTTP/1.1, no
 * `Connection: close`, nothing extra after it); anything else closes it.
 */
class Connection {
  readonly #socket: net.Socket;
  readonly #key: string;
  readonly #ready: Promise<void>;
  #slab = slabs.take();
  #used = 0;
  #exchange: Exchange | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(url: URL, target: ConnectTarget, key: string) {
    this.#key = key;
    const onread = {
      buffer: () => {
        if (this.#slab.length - this.#used < MIN_READ) {
          slabs.retire(this.#slab);
          this.#slab = slabs.take();
          this.#used = 0;
        }
        return this.#slab.subarray(this.#used);
      },
      callback: (n: number): boolean => {
        const view = this.#slab.subarray(this.#used, this.#used + n);
        this.#used += n;
        if (!this.#exchange) {
          // Bytes nobody asked for: the connection can't be trusted any more.
          this.#socket.destroy();
          return false;
        }
        return this.#exchange.onBytes(view);
      },
    };
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = target.port ?? (Number(url.port) || (url.protocol === 'https:' ? 443 : 80));
    const options = { host, port, onread, ...(target.lookup ? { lookup: target.lookup } : {}) };
    const tlsOn = url.protocol === 'https:';
    this.#socket = tlsOn
      ? tls.connect({ ...options, servername: net.isIP(host) ? '' : host, rejectUnauthorized: target.rejectUnauthorized, ALPNProtocols: ['http/1.1'] })
      : net.connect(options);
    this.#ready = new Promise<void>((resolve) => this.#socket.once(tlsOn ? 'secureConnect' : 'connect', () => resolve()));
    this.#socket.on('error', (err) => this.#exchange?.fail(err));
    this.#socket.on('close', () => {
      this.closed = true;
      clearTimeout(this.#idleTimer);
      const list = idle.get(this.#key);
      if (list?.includes(this)) list.splice(list.indexOf(this), 1);
      if (list?.length === 0) idle.delete(this.#key);
      slabs.retire(this.#slab);
      this.#exchange?.onClose();
    });
  }

  leaveIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#socket.ref();
  }

  send(url: URL, request: string, timeouts: Timeouts): Promise<BulkResponse> {
    const socket = this.#socket;
    return new Promise((resolve, reject) => {
      const parser = new ResponseParser();
      let body: Readable | undefined;
      let settled = false;
      let connected = false;
      // The minimum rate: body bytes per idle period, judged only over periods the reader never held back.
      const minBytes = ((timeouts.minBytesPerSecond ?? 0) * timeouts.idleMs) / 1000;
      let periodBytes = 0;
      let heldBack = false;
      let rateTimer: NodeJS.Timeout | undefined;
      const stopTimers = () => {
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        clearInterval(rateTimer);
      };
      const watchRate = () => {
        if (minBytes <= 0) return;
        rateTimer = setInterval(() => {
          if (!heldBack && periodBytes < minBytes) {
            fail(new TimeoutError(`upstream ${url.host} sent ${periodBytes} bytes in ${timeouts.idleMs} ms, below the minimum rate of ${timeouts.minBytesPerSecond} bytes/s`));
          }
          periodBytes = 0;
          heldBack = false;
        }, timeouts.idleMs);
        rateTimer.unref();
      };
      const fail = (err: Error) => {
        stopTimers();
        this.#exchange = undefined;
        socket.destroy();
        if (!settled) {
          settled = true;
          reject(err);
        } else if (body && !body.readableEnded) {
          body.destroy(err);
        }
      };
      const connectTimer = setTimeout(() => fail(new TimeoutError(`could not connect to ${url.host} within ${timeouts.connectMs} ms`)), timeouts.connectMs);
      const responseTimer = setTimeout(() => fail(new TimeoutError(`no response headers from ${url.host} within ${timeouts.responseMs} ms`)), timeouts.responseMs);
      const onIdle = () => fail(new TimeoutError(`upstream ${url.host} sent nothing for ${timeouts.idleMs} ms`));
      this.#exchange = {
        fail,
        onClose: () => {
          stopTimers();
          if (parser.complete) return;
          const early = connected ? parser.endOfInput() : new Error(`the connection to ${url.host} closed`);
          if (early) fail(early);
          else {
            this.#exchange = undefined;
            body?.push(null);
          }
        },
        onBytes: (view) => {
          try {
            const pieces = parser.feed(view);
            if (parser.head && !settled) {
              settled = true;
              clearTimeout(responseTimer);
              watchRate();
              body = new Readable({
                highWaterMark: BODY_HIGH_WATER,
                read: () => {
                  if (this.#exchange?.fail === fail) socket.resume();
                },
                destroy: (err, callback) => {
                  clearInterval(rateTimer);
                  // A body dropped before its end leaves the connection mid-response: close it.
                  if (this.#exchange?.fail === fail) {
                    this.#exchange = undefined;
                    socket.destroy();
                  }
                  callback(err);
                },
              });
              resolve({ status: parser.head.status, headers: parser.head.headers, body, release });
            }
            let more = true;
            for (const piece of pieces) {
              slabs.lend(piece);
              periodBytes += piece.length;
              more = body!.push(piece);
            }
            if (!more) heldBack = true;
            if (parser.complete) {
              this.#exchange = undefined;
              clearInterval(rateTimer);
              socket.off('timeout', onIdle);
              socket.setTimeout(0);
              body!.push(null);
              if (parser.reusable) this.#goIdle();
              else socket.destroy();
              return true;
            }
            return more;
          } catch (err) {
            fail(err as Error);
            return false;
          }
        },
      };
      socket.setTimeout(timeouts.idleMs);
      socket.on('timeout', onIdle);
      void this.#ready.then(() => {
        connected = true;
        clearTimeout(connectTimer);
        if (this.#exchange?.fail !== fail) return;
        socket.setNoDelay(true);
        socket.write(request);
        // A reused connection may have been paused by the previous body's backpressure.
        socket.resume();
      });
    });
  }

  #goIdle(): void {
    if (this.closed) return;
    const list = idle.get(this.#key) ?? [];
    if (list.length >= MAX_IDLE_PER_KEY) {
      this.#socket.destroy();
      return;
    }
    list.push(this);
    idle.set(this.#key, list);
    this.#idleTimer = setTimeout(() => this.#socket.destroy(), IDLE_MS);
    this.#idleTimer.unref();
    this.#socket.unref();
  }
}

function requestHead(url: URL, headers: Readonly<Record<string, string>>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`header ${JSON.stringify(name)} contains a line break`);
    lines.push(`${name}: ${value}`);
  }
  lines.push('', '');
  return lines.join('\r\n');
}

interface Head {
  readonly status: number;
  readonly version: string;
  readonly headers: IncomingHttpHeaders;
}

type BodyState = { kind: 'length'; left: number } | { kind: 'chunked'; step: 'size' | 'data' | 'data-end' | 'trailer'; left: number } | { kind: 'eof' };

/**
 * An HTTP/1.1 response, fed as it arrives: the head, then the body framed by Content-Length, by chunked
 * transfer coding, or by the end of the connection. Body pieces are views on the input.
 */
class ResponseParser {
  head: Head | undefined;
  complete = false;
  #headText = '';
  #line = '';
  #body: BodyState | undefined;
  #received = 0;
  /** Bytes arrived after the end of the response. */
  #extra = false;

  /** Whether the connection may carry another request after this complete response. */
  get reusable(): boolean {
    if (!this.complete || !this.head || this.#extra || this.#body?.kind === 'eof' || this.head.version !== '1.1') return false;
    return !/(^|,)\s*close\s*(,|$)/i.test(String(this.head.headers.connection ?? ''));
  }

  /** The body bytes in `input`. */
  feed(input: Buffer): Buffer[] {
    const pieces: Buffer[] = [];
    let at = 0;
    while (at < input.length && !this.complete) {
      if (!this.head) {
        at = this.#readHead(input, at);
        continue;
      }
      const body = this.#body!;
      if (body.kind === 'eof') {
        pieces.push(input.subarray(at));
        this.#received += input.length - at;
        at = input.length;
      } else if (body.kind === 'length') {
        const n = Math.min(body.left, input.length - at);
        pieces.push(input.subarray(at, at + n));
        body.left -= n;
        this.#received += n;
        at += n;
        if (body.left === 0) this.complete = true;
      } else {
        at = this.#readChunked(body, input, at, pieces);
      }
    }
    if (at < input.length) this.#extra = true;
    return pieces;
  }

  /** Called when the connection ended: the error if the body was not complete. */
  endOfInput(): Error | undefined {
    if (!this.head) return new UpstreamProtocolError('the upstream closed the connection before a complete response head');
    if (this.#body?.kind === 'eof') {
      this.complete = true;
      return undefined;
    }
    if (this.#body?.kind === 'length') return Object.assign(new Error(`upstream closed the connection after ${this.#received} body bytes, ${this.#body.left} short`), { code: 'ECONNRESET' });
    return Object.assign(new Error('upstream closed the connection in the middle of a chunked body'), { code: 'ECONNRESET' });
  }

  #readHead(input: Buffer, at: number): number {
    const end = input.indexOf('\r\n\r\n', at, 'latin1');
    // The terminator may straddle two reads: look at the tail of the text so far too.
    const text = this.#headText + input.toString('latin1', at, end === -1 ? input.length : end + 4);
    const split = text.indexOf('\r\n\r\n');
    if (split === -1) {
      if (text.length > MAX_HEAD) throw new UpstreamProtocolError(`upstream response head is larger than ${MAX_HEAD} bytes`);
      this.#headText = text;
      return input.length;
    }
    const consumed = at + (split + 4 - this.#headText.length);
    this.#headText = '';
    const head = parseHead(text.slice(0, split));
    if (head.status >= 100 && head.status < 200) return consumed; // an interim response: the real one follows
    this.head = head;
    this.#body = framing(head);
    if (this.#body.kind === 'length' && this.#body.left === 0) this.complete = true;
    return consumed;
  }

  #readChunked(body: Extract<BodyState, { kind: 'chunked' }>, input: Buffer, at: number, pieces: Buffer[]): number {
    if (body.step === 'data') {
      const n = Math.min(body.left, input.length - at);
      pieces.push(input.subarray(at, at + n));
      body.left -= n;
      this.#received += n;
      if (body.left === 0) body.step = 'data-end';
      return at + n;
    }
    // Line-oriented steps: the size line, the CRLF after the data, trailer lines.
    const newline = input.indexOf(10, at);
    const lineEnd = newline === -1 ? input.length : newline + 1;
    this.#line += input.toString('latin1', at, lineEnd);
    if (this.#line.length > 4096) throw new UpstreamProtocolError('upstream sent an overlong line in a chunked body');
    if (newline === -1) return lineEnd;
    const line = this.#line.replace(/\r?\n$/, '');
    this.#line = '';
    if (body.step === 'data-end') {
      if (line !== '') throw new UpstreamProtocolError('upstream chunk data was not followed by CRLF');
      body.step = 'size';
    } else if (body.step === 'size') {
      const size = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line.trim());
      if (!size) throw new UpstreamProtocolError(`upstream sent a bad chunk size line: ${JSON.stringify(line.slice(0, 40))}`);
      body.left = parseInt(size[1]!, 16);
      body.step = body.left === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      this.complete = true;
    }
    return lineEnd;
  }
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!status) throw new UpstreamProtocolError(`upstream sent a bad status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    // RFC 9112 5.1: no whitespace between the field name and the colon; such a message is rejected, as
    // proxies disagree on whether `Transfer-Encoding : chunked` frames the body (request smuggling).
    if (colon <= 0 || !FIELD_NAME.test(name)) throw new UpstreamProtocolError(`upstream sent a bad header line: ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(status[2]), version: `1.${status[1]}`, headers };
}

/** RFC 9110 5.1: a field name is a token. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function framing(head: Head): BodyState {
  if (head.status === 204 || head.status === 304) return { kind: 'length', left: 0 };
  const coding = head.headers['transfer-encoding'];
  const lengthText = head.headers['content-length'];
  // RFC 9112 6.1: a message with both may be an attempt at response smuggling; the mirror would announce
  // one length to its client and be handed another. Refused rather than guessed at.
  if (coding !== undefined && lengthText !== undefined) throw new UpstreamProtocolError('upstream sent both Transfer-Encoding and Content-Length');
  if (coding !== undefined) {
    if (!/(^|,)\s*chunked\s*$/.test(String(coding).toLowerCase())) return { kind: 'eof' };
    return { kind: 'chunked', step: 'size', left: 0 };
  }
  if (lengthText === undefined) return { kind: 'eof' };
  // RFC 9110 8.6: identical values (repeated fields, or one list) are one length.
  const values = String(lengthText).split(',').map((v) => v.trim());
  if (!values.every((v) => v === values[0]) || !/^\d{1,15}$/.test(values[0]!)) {
    throw new UpstreamProtocolError(`upstream sent a bad Content-Length: ${JSON.stringify(lengthText)}`);
  }
  head.headers['content-length'] = values[0]!;
  return { kind: 'length', left: Number(values[0]) };
}
