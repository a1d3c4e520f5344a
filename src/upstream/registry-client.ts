// Talks to one upstream registry: authentication (Bearer token flow, Basic, static token), redirects
// (blob GETs go to a CDN on another host, which never sees our Authorization), bounded retries of
// idempotent requests before any byte reached the client, and connection reuse.
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamConfig } from '../config/config.ts';
import type { Metrics } from '../observability/metrics.ts';
import { parseChallenge, type Challenge } from './challenge.ts';
import { UpstreamUnavailableError, type UpstreamFailure } from './errors.ts';
import { bulkGet, type ConnectTarget } from './bulk-get.ts';
import { drain, sendRequest, TimeoutError, type Timeouts } from './http-request.ts';
import { TokenAuthError, TokenCache } from './token-auth.ts';

export interface UpstreamRequest {
  readonly method: 'GET' | 'HEAD';
  /** Path under the registry root, e.g. /v2/library/alpine/manifests/3.8. */
  readonly path: string;
  /** Repository the request is about: the token scope. */
  readonly repo: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A large body read once (a blob GET): read into reused slabs over keep-alive connections of its own (bulk-get.ts). */
  readonly bulk?: boolean;
  /** The Via of the client request this is made for: its hops go before ours (RFC 9110 7.6.3). */
  readonly via?: string | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body stream; read it to the end or destroy it. */
  readonly body: Readable;
  /** For bulk requests: call once with each body chunk no longer needed, so its memory is reused. */
  readonly release?: (chunk: Uint8Array) => void;
}

export interface RegistryClientOptions {
  readonly timeouts: Timeouts;
  readonly retries: number;
  readonly metrics?: Metrics;
  readonly userAgent?: string;
  /** Base delay between retries; doubled each time. */
  readonly retryDelayMs?: number;
  /** A Via header value that marks requests as this mirror's, so it can spot its own (see loop.ts). */
  readonly via?: string;
}

const MAX_REDIRECTS = 5;
/** Characters of a client's Via passed on: enough for a chain of proxies, not a way to bloat requests. */
const MAX_VIA = 1024;
const RETRYABLE_STATUS = new Set([500, 502, 503, 504]);

export class RegistryClient {
  readonly upstream: UpstreamConfig;
  readonly #options: RegistryClientOptions;
  readonly #agent: http.Agent;
  readonly #otherAgents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  readonly #tokens: TokenCache;
  /** Where bulk GETs to the upstream's own origin connect (the agent's settings, for bulk-get.ts). */
  readonly #target: ConnectTarget;
  /** The last challenge the upstream sent: lets us fetch tokens before the first 401 of a new scope. */
  #challenge?: Challenge;

  constructor(upstream: UpstreamConfig, options: RegistryClientOptions) {
    this.upstream = upstream;
    this.#options = options;
    const lookup = upstream.address ? pinnedLookup(upstream.address.host) : undefined;
    this.#target = { rejectUnauthorized: !upstream.insecure, ...(lookup ? { lookup } : {}), ...(upstream.address?.port !== undefined ? { port: upstream.address.port } : {}) };
    const agentOptions = { keepAlive: true, maxSockets: 128, maxFreeSockets: 32, ...(lookup ? { lookup } : {}) };
    this.#agent = upstream.url.startsWith('https:')
      ? new https.Agent({ ...agentOptions, rejectUnauthorized: !upstream.insecure })
      : new http.Agent(agentOptions);
    if (upstream.address?.port !== undefined) connectToPort(this.#agent, upstream.address.port);
    this.#tokens = new TokenCache({
      agentFor: (url) => this.#agentFor(url),
      timeouts: options.timeouts,
      onFetch: (result) => options.metrics?.tokenFetches.inc({ upstream: upstream.name, result }),
    });
  }

  /** Sends the request, retrying connection failures and 5xx; returns the first non-retryable answer. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const attempts = this.#options.retries + 1;
    let lastError: UpstreamUnavailableError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep((this.#options.retryDelayMs ?? 200) * 2 ** (attempt - 1));
      let res: UpstreamResponse;
      try {
        res = await this.#authenticated(req);
      } catch (err) {
        if (err instanceof TokenAuthError) {
          if (err.status >= 500) {
            lastError = new UpstreamUnavailableError(this.upstream.name, 'status', err.message, { status: err.status, cause: err });
            continue;
          }
          throw err;
        }
        lastError = this.#failure(err);
        continue;
      }
      if (RETRYABLE_STATUS.has(res.status)) {
        drain(res.body);
        this.#options.metrics?.upstreamErrors.inc({ upstream: this.upstream.name, reason: 'status' });
        lastError = new UpstreamUnavailableError(this.upstream.name, 'status', `upstream ${this.upstream.name} answered ${res.status}`, { status: res.status });
        continue;
      }
      return res;
    }
    throw lastError!;
  }

  #failure(err: unknown): UpstreamUnavailableError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reason: UpstreamFailure =
      err instanceof TimeoutError ? 'timeout'
      : /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code) ? 'connect'
      : /CERT|SSL|TLS/.test(code) ? 'tls'
      : /^(ECONNRESET|EPIPE|ECONNABORTED)$/.test(code) ? 'reset'
      : 'protocol';
    this.#options.metrics?.upstreamErrors.inc({ upstream: this.upstream.name, reason });
    this.#options.metrics?.upstreamRequests.inc({ upstream: this.upstream.name, code: '0' });
    return new UpstreamUnavailableError(this.upstream.name, reason, `upstream ${this.upstream.name} failed: ${(err as Error).message}`, { cause: err });
  }

  async #authenticated(req: UpstreamRequest): Promise<UpstreamResponse> {
    const scope = `repository:${req.repo}:pull`;
    let res = await this.#follow(req, this.#authorization(scope));
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
    if (!challenge) return res;
    let authorization: string | undefined;
    const credentials = this.upstream.credentials;
    if (challenge.scheme === 'bearer') {
      this.#challenge = challenge;
      if (credentials?.kind === 'token') return res; // a static token that was refused: nothing else to try
      authorization = `Bearer ${await this.#tokens.fetch(challenge, challenge.params.scope ?? scope, credentials)}`;
    } else if (challenge.scheme === 'basic' && credentials?.kind === 'basic') {
      this.#challenge = challenge;
      authorization = basic(credentials.username, credentials.password.reveal());
    } else {
      return res;
    }
    drain(res.body);
    res = await this.#follow(req, authorization);
    return res;
  }

  /** What we can send before being challenged: a static token, Basic, or a cached Bearer token. */
  #authorization(scope: string): string | undefined {
    const credentials = this.upstream.credentials;
    if (credentials?.kind === 'token') return `Bearer ${credentials.token.reveal()}`;
    if (this.#challenge?.scheme === 'basic' && credentials?.kind === 'basic') return basic(credentials.username, credentials.password.reveal());
    if (this.#challenge?.scheme === 'bearer') {
      const token = this.#tokens.cached(this.#challenge, scope);
      if (token) return `Bearer ${token}`;
    }
    return undefined;
  }

  /** Sends and follows redirects; Authorization goes only to the upstream's own origin. */
  async #follow(req: UpstreamRequest, authorization: string | undefined): Promise<UpstreamResponse> {
    let url = new URL(req.path, this.upstream.url);
    for (let hop = 0; ; hop++) {
      const ownOrigin = url.origin === this.upstream.url;
      const headers: Record<string, string> = { 'user-agent': this.#options.userAgent ?? 'ocimirror', ...req.headers };
      const via = [req.via?.slice(0, MAX_VIA), this.#options.via].filter(Boolean).join(', ');
      if (via) headers.via = via;
      if (authorization && ownOrigin) headers.authorization = authorization;
      const started = performance.now();
      const res = await this.#send(url, req, headers);
      const status = res.status;
      this.#options.metrics?.upstreamRequests.inc({ upstream: this.upstream.name, code: String(status) });
      this.#options.metrics?.upstreamDuration.observe({ upstream: this.upstream.name }, (performance.now() - started) / 1000);
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(status) || !location) return res;
      drain(res.body);
      if (hop >= MAX_REDIRECTS) throw new UpstreamUnavailableError(this.upstream.name, 'protocol', `upstream ${this.upstream.name} redirected more than ${MAX_REDIRECTS} times`);
      url = new URL(location, url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new UpstreamUnavailableError(this.upstream.name, 'protocol', `upstream ${this.upstream.name} redirected to a ${url.protocol} URL`);
      }
    }
  }

  async #send(url: URL, req: UpstreamRequest, headers: Record<string, string>): Promise<UpstreamResponse> {
    const timeouts = this.#options.timeouts;
    if (req.bulk && req.method === 'GET') {
      return bulkGet(url, headers, url.origin === this.upstream.url ? this.#target : { rejectUnauthorized: true }, timeouts);
    }
    const res = await sendRequest(url, { method: req.method, headers, agent: this.#agentFor(url), timeouts });
    return { status: res.statusCode ?? 0, headers: res.headers, body: res };
  }

  #agentFor(url: URL): http.Agent {
    if (url.origin === this.upstream.url) return this.#agent;
    return url.protocol === 'https:' ? this.#otherAgents.https : this.#otherAgents.http;
  }

  close(): void {
    this.#agent.destroy();
    this.#otherAgents.http.destroy();
    this.#otherAgents.https.destroy();
  }
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/**
 * The upstream's `address`: every connection of the agent goes to `ip`, whatever its host name
 * resolves to on this machine (an /etc/hosts spoof included). Only the lookup changes, so the Host
 * header, TLS SNI and certificate verification still use the URL's host.
 */
function pinnedLookup(ip: string): LookupFunction {
  const family = isIP(ip);
  return (_hostname, options, callback) => (options.all ? callback(null, [{ address: ip, family }]) : callback(null, ip, family));
}

/** Connects to `port` instead of the URL's port (the Host header keeps the URL's). */
function connectToPort(agent: http.Agent, port: number): void {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => create({ ...options, port }, callback);
}
