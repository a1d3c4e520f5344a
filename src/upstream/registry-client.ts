// Talks to one upstream registry: authentication (Bearer token flow, Basic, static token), redirects
// (blob GETs go to a CDN on another host, which never sees our Authorization), bounded retries of
// idempotent requests before any byte reached the client, and connection reuse. What the upstream may
// make the mirror do is bounded: credentials go only to its own origin and to the token realms its own
// challenges name; redirects and realms lead only where target-policy.ts allows; every request (token
// fetches and retries included) ends by one deadline; connections are capped per upstream.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamConfig } from '../config/config.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { UpstreamHealthBoard } from './health.ts';
import { basicAuthorization, parseChallenge, type Challenge } from './challenge.ts';
import { discard } from './body.ts';
import { TimeoutError, UpstreamUnavailableError, type UpstreamFailure } from './errors.ts';
import { UpstreamHttp, type Timeouts } from './http-client.ts';
import { REFUSED_TARGET, TargetPolicy, type AddressClass } from './target-policy.ts';
import { TokenAuthError, TokenCache } from './token-auth.ts';

export interface UpstreamRequest {
  readonly method: 'GET' | 'HEAD';
  /** Path under the registry root, e.g. /v2/library/alpine/manifests/3.8. */
  readonly path: string;
  /** Repository the request is about: the token scope. */
  readonly repo: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A large body read once (a blob GET): connections of its own, and the minimum rate applies. */
  readonly bulk?: boolean;
  /** The Via of the client request this is made for: its hops go before ours (RFC 9110 7.6.3). */
  readonly via?: string | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body stream; read it to the end or destroy it. */
  readonly body: Readable;
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
  /** Where the upstream lives, when known better than its URL or address say (see TargetPolicy). */
  readonly upstreamHome?: readonly AddressClass[];
  /** Told of every answer and failure (the web UI's dashboard). */
  readonly health?: UpstreamHealthBoard;
}

const MAX_REDIRECTS = 5;
/** A client's Via passed on: enough for a chain of proxies; a longer one is refused as a likely loop. */
const MAX_VIA = 1024;
const MAX_VIA_HOPS = 16;
const RETRYABLE_STATUS = new Set([500, 502, 503, 504]);

export class RegistryClient {
  readonly upstream: UpstreamConfig;
  readonly #options: RegistryClientOptions;
  readonly #http: UpstreamHttp;
  readonly #tokens: TokenCache;
  readonly #policy: TargetPolicy;
  /** The last challenge the upstream sent: lets us fetch tokens before the first 401 of a new scope. */
  #challenge?: Challenge;

  constructor(upstream: UpstreamConfig, options: RegistryClientOptions) {
    this.upstream = upstream;
    this.#options = options;
    this.#policy = new TargetPolicy(upstream, { ...(options.upstreamHome ? { home: options.upstreamHome } : {}), proxied: upstream.proxy !== undefined });
    const lookup = upstream.address ? pinnedLookup(upstream.address.host) : undefined;
    this.#http = new UpstreamHttp({
      origin: upstream.url,
      connections: upstream.maxConnections,
      connectMs: options.timeouts.connectMs,
      own: {
        rejectUnauthorized: !upstream.insecure,
        ...(upstream.ca ? { ca: upstream.ca } : {}),
        ...(lookup ? { lookup } : {}),
        ...(upstream.address?.port !== undefined ? { port: upstream.address.port } : {}),
      },
      otherLookup: this.#policy.lookup,
      ...(upstream.proxy ? { proxy: upstream.proxy } : {}),
    });
    this.#tokens = new TokenCache({
      http: this.#http,
      timeouts: options.timeouts,
      checkRealm: (url) => (url.origin === this.upstream.url ? Promise.resolve() : this.#policy.check(url, 'its token realm')),
      ...(options.via ? { via: options.via } : {}),
      ...(options.userAgent ? { userAgent: options.userAgent } : {}),
      onFetch: (result) => options.metrics?.tokenFetches.inc({ upstream: upstream.name, result }),
    });
  }

  /**
   * Sends the request, retrying connection failures and 5xx; returns the first non-retryable answer.
   * Everything it takes (redirects, a token fetch, retries) ends by one deadline, the response timeout:
   * about what a client waits for the headers, so nothing is still going on for a client long gone.
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    this.#checkVia(req.via);
    const deadline = Date.now() + this.#options.timeouts.responseMs;
    const attempts = this.#options.retries + 1;
    let lastError: UpstreamUnavailableError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const delay = (this.#options.retryDelayMs ?? 200) * 2 ** (attempt - 1);
        if (Date.now() + delay >= deadline) break;
        await sleep(delay);
      }
      let res: UpstreamResponse;
      const sent = Date.now();
      try {
        res = await this.#authenticated(req, deadline);
        this.#options.health?.answered(this.upstream.name, res.status, res.headers, Date.now() - sent);
      } catch (err) {
        this.#options.health?.failed(this.upstream.name, (err as Error).message);
        if (err instanceof TokenAuthError) {
          // 508: the realm leads back to this mirror (loop.ts); asking again would not change that.
          if (err.status >= 500 && err.status !== 508) {
            lastError = new UpstreamUnavailableError(this.upstream.name, 'status', err.message, { status: err.status, cause: err });
            continue;
          }
          throw err;
        }
        lastError = this.#failure(err);
        if (lastError.reason === 'refused') throw lastError;
        continue;
      }
      if (RETRYABLE_STATUS.has(res.status)) {
        discard(res.body);
        this.#options.metrics?.upstreamErrors.inc({ upstream: this.upstream.name, reason: 'status' });
        lastError = new UpstreamUnavailableError(this.upstream.name, 'status', `upstream ${this.upstream.name} answered ${res.status}`, { status: res.status });
        continue;
      }
      return res;
    }
    throw lastError ?? new UpstreamUnavailableError(this.upstream.name, 'timeout', `upstream ${this.upstream.name} did not answer by the deadline`);
  }

  /** A request that already passed many proxies is most likely going round in a loop of mirrors. */
  #checkVia(via: string | undefined): void {
    if (!via) return;
    const hops = via.split(',').length;
    if (hops >= MAX_VIA_HOPS || via.length > MAX_VIA) {
      throw new UpstreamUnavailableError(this.upstream.name, 'refused', `the request already passed ${hops} proxies (Via): refusing to pass it on, as it is likely going round a loop of mirrors`);
    }
  }

  #failure(err: unknown): UpstreamUnavailableError {
    if (err instanceof UpstreamUnavailableError) {
      this.#options.metrics?.upstreamErrors.inc({ upstream: this.upstream.name, reason: err.reason });
      return err;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reason: UpstreamFailure =
      code === REFUSED_TARGET ? 'refused'
      : err instanceof TimeoutError ? 'timeout'
      : /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code) ? 'connect'
      : /CERT|SSL|TLS/.test(code) ? 'tls'
      : /^(ECONNRESET|EPIPE|ECONNABORTED)$/.test(code) ? 'reset'
      : 'protocol';
    this.#options.metrics?.upstreamErrors.inc({ upstream: this.upstream.name, reason });
    this.#options.metrics?.upstreamRequests.inc({ upstream: this.upstream.name, code: '0' });
    return new UpstreamUnavailableError(this.upstream.name, reason, `upstream ${this.upstream.name} failed: ${(err as Error).message}`, { cause: err });
  }

  /** The configured timeouts, shortened to what is left before `deadline`. */
  #timeouts(deadline: number): Timeouts {
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`upstream ${this.upstream.name} did not answer within ${this.#options.timeouts.responseMs} ms`);
    const t = this.#options.timeouts;
    return { ...t, connectMs: Math.min(t.connectMs, left), responseMs: Math.min(t.responseMs, left) };
  }

  async #authenticated(req: UpstreamRequest, deadline: number): Promise<UpstreamResponse> {
    const scope = `repository:${req.repo}:pull`;
    const { res, url } = await this.#follow(req, this.#authorization(scope), deadline);
    if (res.status !== 401) return res;
    // Only the upstream's own challenges are answered (as distribution's proxy does): a redirect target
    // that asks for credentials of its own (a CDN with a Bearer realm) gets none of ours.
    if (url.origin !== this.upstream.url) return res;
    const challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
    if (!challenge) return res;
    const credentials = this.upstream.credentials;
    let authorization: string;
    if (challenge.scheme === 'bearer') {
      if (credentials?.kind === 'token') return res; // a static token that was refused: nothing else to try
      this.#challenge = challenge;
      // The 401's socket goes back to the agent before the (possibly slow) token fetch, not after it.
      discard(res.body);
      authorization = `Bearer ${await this.#tokens.fetch(challenge, challenge.params.scope ?? scope, credentials, this.#timeouts(deadline))}`;
    } else if (challenge.scheme === 'basic' && credentials?.kind === 'basic') {
      this.#challenge = challenge;
      discard(res.body);
      authorization = basicAuthorization(credentials.username, credentials.password.reveal());
    } else {
      return res;
    }
    return (await this.#follow(req, authorization, deadline)).res;
  }

  /** What we can send before being challenged: a static token, Basic, or a cached Bearer token. */
  #authorization(scope: string): string | undefined {
    const credentials = this.upstream.credentials;
    if (credentials?.kind === 'token') return `Bearer ${credentials.token.reveal()}`;
    if (this.#challenge?.scheme === 'basic' && credentials?.kind === 'basic') return basicAuthorization(credentials.username, credentials.password.reveal());
    if (this.#challenge?.scheme === 'bearer') {
      const token = this.#tokens.cached(this.#challenge, scope);
      if (token) return `Bearer ${token}`;
    }
    return undefined;
  }

  /** Sends and follows redirects; Authorization goes only to the upstream's own origin. The answer and the URL that gave it. */
  async #follow(req: UpstreamRequest, authorization: string | undefined, deadline: number): Promise<{ res: UpstreamResponse; url: URL }> {
    let url = new URL(req.path, this.upstream.url);
    for (let hop = 0; ; hop++) {
      const ownOrigin = url.origin === this.upstream.url;
      if (!ownOrigin) await this.#policy.check(url, 'a redirect');
      const headers: Record<string, string> = { 'user-agent': this.#options.userAgent ?? 'ocimirror', ...req.headers };
      const via = [req.via, this.#options.via].filter(Boolean).join(', ');
      if (via) headers.via = via;
      if (authorization && ownOrigin) headers.authorization = authorization;
      const started = performance.now();
      const res = await this.#send(url, req, headers, deadline);
      const status = res.status;
      this.#options.metrics?.upstreamRequests.inc({ upstream: this.upstream.name, code: String(status) });
      this.#options.metrics?.upstreamDuration.observe({ upstream: this.upstream.name }, (performance.now() - started) / 1000);
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(status) || !location) return { res, url };
      discard(res.body);
      if (hop >= MAX_REDIRECTS) throw new UpstreamUnavailableError(this.upstream.name, 'protocol', `upstream ${this.upstream.name} redirected more than ${MAX_REDIRECTS} times`);
      if (!URL.canParse(location, url.href)) throw new UpstreamUnavailableError(this.upstream.name, 'protocol', `upstream ${this.upstream.name} redirected to an invalid URL`);
      url = new URL(location, url);
    }
  }

  #send(url: URL, req: UpstreamRequest, headers: Record<string, string>, deadline: number): Promise<UpstreamResponse> {
    return this.#http.send(url, { method: req.method, headers, timeouts: this.#timeouts(deadline), deadline, bulk: req.bulk === true });
  }

  /** Closes the upstream's connections; requests in flight fail. */
  close(): Promise<void> {
    return this.#http.close();
  }
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
