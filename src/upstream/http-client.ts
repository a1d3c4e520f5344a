// The one HTTP stack for an upstream's traffic (manifests, tags, HEADs, tokens, blobs, wherever they
// were redirected): undici's pooled keep-alive connections (llhttp, TLS session reuse), through an
// outbound proxy where the config says so. Owned by the upstream's RegistryClient and closed with it.
// The timeouts are config upstreamTimeouts: connecting, waiting for the response head (bounded by the
// caller's deadline), silence while a body streams, and a minimum rate for blob bodies.
import type { IncomingHttpHeaders } from 'node:http';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, buildConnector, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import type { ProxyConfig, ProxyEndpoint } from '../config/config.ts';
import { ConnectionSlots } from './connection-slots.ts';
import { TimeoutError } from './errors.ts';

export interface Timeouts {
  readonly connectMs: number;
  readonly responseMs: number;
  readonly idleMs: number;
  /**
   * Blob bodies: fewer bytes than this rate allows in an `idleMs` period (not counting time the reader
   * held the body back) end the download, so a drip of 1 B/s cannot hold it forever.
   */
  readonly minBytesPerSecond?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body; read it to the end or destroy it. Fails with the connection's error if it ends early. */
  readonly body: Readable;
}

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
  /** Shortened to what is left before the caller's deadline. */
  readonly timeouts: Timeouts;
  /** Epoch ms by which the response head must have arrived (waiting for a free connection included). */
  readonly deadline: number;
  /** A blob: its own connections, and the minimum rate applies. */
  readonly bulk?: boolean;
}

/** How to reach the upstream's own origin; redirect targets and token realms are reached by `otherLookup`. */
export interface HttpClientOptions {
  readonly origin: string;
  /** Connections at once per kind (blobs; everything else), over all origins. */
  readonly connections: number;
  readonly connectMs: number;
  readonly own: { readonly rejectUnauthorized: boolean; readonly ca?: string; readonly lookup?: LookupFunction; readonly port?: number };
  /** Resolves other hosts and refuses the addresses the mirror may not go to (target-policy.ts). */
  readonly otherLookup: LookupFunction;
  readonly proxy?: ProxyConfig;
}

/** A body that buffers this much before the connection pauses. */
const BODY_HIGH_WATER = 1024 * 1024;
/** Idle keep-alive connections are closed after this long (unless the upstream says less). */
const KEEP_ALIVE_MS = 30_000;

export class UpstreamHttp {
  readonly #options: HttpClientOptions;
  readonly #dispatchers = new Map<string, Dispatcher>();
  /**
   * Requests in flight: blob downloads wherever they were redirected; the rest to the upstream's own
   * origin; the rest elsewhere (token realms), so a slow realm never holds up manifests.
   */
  readonly #slots: { readonly bulk: ConnectionSlots; readonly own: ConnectionSlots; readonly other: ConnectionSlots };

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#slots = { bulk: new ConnectionSlots(options.connections), own: new ConnectionSlots(options.connections), other: new ConnectionSlots(options.connections) };
  }

  /** Resolves once the response head arrived; the body is the caller's to read or destroy. */
  async send(url: URL, req: HttpRequest): Promise<HttpResponse> {
    for (const [name, value] of Object.entries(req.headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`header ${JSON.stringify(name)} contains a line break`);
    }
    const bulk = req.bulk === true && req.method === 'GET';
    const own = url.origin === this.#options.origin;
    const release = await this.#slots[bulk ? 'bulk' : own ? 'own' : 'other'].acquire(req.deadline, url.host);
    try {
      const res = await exchange(this.#dispatcher(own, bulk), url, req, bulk);
      res.body.once('close', release);
      return res;
    } catch (err) {
      release();
      throw err;
    }
  }

  async close(): Promise<void> {
    const dispatchers = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(dispatchers.map((d) => d.destroy().catch(() => {})));
  }

  /** One pool set per (own origin or elsewhere) x (blobs or the rest), made on first use. */
  #dispatcher(own: boolean, bulk: boolean): Dispatcher {
    const key = `${own ? 'own' : 'other'}|${bulk ? 'bulk' : 'rest'}`;
    let dispatcher = this.#dispatchers.get(key);
    if (!dispatcher) {
      dispatcher = this.#create(own);
      this.#dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  #create(own: boolean): Dispatcher {
    const o = this.#options;
    const tls = own ? { rejectUnauthorized: o.own.rejectUnauthorized, ...(o.own.ca ? { ca: o.own.ca } : {}) } : {};
    const lookup = own ? o.own.lookup : o.otherLookup;
    const connector = buildConnector({ timeout: o.connectMs, allowH2: false, ...tls, ...(lookup ? { lookup } : {}) });
    const port = own ? o.own.port : undefined;
    const connect: buildConnector.connector = port === undefined ? connector : (options, callback) => connector({ ...options, port: String(port) }, callback);
    const pool = { connections: o.connections, allowH2: false, keepAliveTimeout: KEEP_ALIVE_MS, connect };
    // The config gives no proxy to an upstream pinned to an `address`: it is reached there.
    const proxy = o.proxy;
    if (!proxy) return new Agent(pool);
    return new EnvHttpProxyAgent({
      ...pool,
      httpProxy: proxyUri(proxy.http),
      httpsProxy: proxyUri(proxy.https),
      noProxy: proxy.noProxy,
      connectTimeout: o.connectMs,
      requestTls: { ...tls, allowH2: false },
    });
  }
}

/** The URI undici's proxy agent takes (it sends the credentials in it as Proxy-Authorization: Basic); '' for none. */
function proxyUri(endpoint: ProxyEndpoint | undefined): string {
  if (!endpoint) return '';
  const url = new URL(endpoint.url);
  if (endpoint.credentials) {
    url.username = endpoint.credentials.username;
    url.password = endpoint.credentials.password.reveal();
  }
  return url.href;
}

/** One request on `dispatcher`: resolves with the head, streams the body with backpressure. */
function exchange(dispatcher: Dispatcher, url: URL, req: HttpRequest, bulk: boolean): Promise<HttpResponse> {
  const { timeouts } = req;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let body: Readable | undefined;
    let failure: Error | undefined;
    let rateTimer: NodeJS.Timeout | undefined;
    // The minimum rate: body bytes per idle period, judged only over periods the reader never held back.
    const minBytes = bulk ? ((timeouts.minBytesPerSecond ?? 0) * timeouts.idleMs) / 1000 : 0;
    let periodBytes = 0;
    let heldBack = false;

    const fail = (err: Error) => {
      clearTimeout(headTimer);
      clearInterval(rateTimer);
      if (failure) return;
      failure = err;
      controller?.abort(err);
      if (!body) reject(err);
      else if (!body.destroyed) body.destroy(err);
    };
    const headTimer = setTimeout(
      () => fail(new TimeoutError(`no response headers from ${url.host} within ${timeouts.responseMs} ms`)),
      Math.max(0, Math.min(timeouts.responseMs, req.deadline - Date.now())),
    );

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (failure) c.abort(failure);
      },
      onResponseStart(c, status, headers) {
        // An interim answer (103 Early Hints): the real one follows on the same exchange.
        if (status < 200) return;
        clearTimeout(headTimer);
        body = new Readable({
          highWaterMark: BODY_HIGH_WATER,
          read: () => c.resume(),
          destroy: (err, callback) => {
            clearInterval(rateTimer);
            // A body dropped before its end leaves the connection mid-response: undici closes it.
            if (!c.aborted && !body?.readableEnded) c.abort(err ?? new Error('the body was dropped before its end'));
            callback(err);
          },
        });
        if (minBytes > 0) {
          rateTimer = setInterval(() => {
            if (!heldBack && periodBytes < minBytes) {
              fail(new TimeoutError(`upstream ${url.host} sent ${periodBytes} bytes in ${timeouts.idleMs} ms, below the minimum rate of ${timeouts.minBytesPerSecond} bytes/s`));
            }
            periodBytes = 0;
            heldBack = false;
          }, timeouts.idleMs);
          rateTimer.unref();
        }
        resolve({ status, headers, body });
      },
      onResponseData(c, chunk) {
        periodBytes += chunk.length;
        if (!body!.push(chunk)) {
          heldBack = true;
          c.pause();
        }
      },
      onResponseEnd() {
        clearInterval(rateTimer);
        body!.push(null);
      },
      onResponseError(_c, err) {
        fail(failure ?? describe(err, url, timeouts));
      },
    };
    dispatcher.dispatch(
      {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers: req.headers,
        headersTimeout: timeouts.responseMs,
        bodyTimeout: timeouts.idleMs,
      },
      handler,
    );
  });
}

/** undici's errors, said in the words (and error codes) the rest of the client and the logs use. */
function describe(err: Error, url: URL, timeouts: Timeouts): Error {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new TimeoutError(`could not connect to ${url.host} within ${timeouts.connectMs} ms`, { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new TimeoutError(`no response headers from ${url.host} within ${timeouts.responseMs} ms`, { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new TimeoutError(`upstream ${url.host} sent nothing for ${timeouts.idleMs} ms`, { cause: err });
    case 'UND_ERR_SOCKET':
      return Object.assign(new Error(`upstream ${url.host} closed the connection before the end of the response`, { cause: err }), { code: 'ECONNRESET' });
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return malformed(url, 'its body length does not match its Content-Length', err);
    default:
      // llhttp refuses what could be read two ways (both Content-Length and Transfer-Encoding, a space
      // before a field's colon, a bad chunk size): request smuggling's tools.
      return err.name === 'HTTPParserError' ? malformed(url, err.message, err) : err;
  }
}

function malformed(url: URL, what: string, cause: Error): Error {
  return Object.assign(new Error(`upstream ${url.host} sent a malformed response: ${what}`, { cause }), { code: 'HPE_INVALID' });
}
