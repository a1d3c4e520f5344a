// Docker's token flow (distribution "Token Authentication Specification"): on a Bearer challenge, ask the
// realm for a token for service+scope (anonymously or with Basic credentials), and reuse it until it expires.
import { LRUCache } from 'lru-cache';
import type { Credentials } from '../config/config.ts';
import { discard, readLimited } from './body.ts';
import { basicAuthorization, type Challenge } from './challenge.ts';
import type { Timeouts, UpstreamHttp } from './http-client.ts';

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export class TokenAuthError extends Error {
  override readonly name = 'TokenAuthError';
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Spec: a token without expires_in lives 60 s; we also never trust less than that, and renew 10 s early. */
const MIN_LIFETIME_S = 60;
const RENEW_EARLY_MS = 10_000;
/** Docker Hub's tokens are a few KiB; anything near this is not a token answer. */
const MAX_TOKEN_BODY = 1024 * 1024;
/** Tokens kept (one per realm, service and scope), by the bytes of their text. */
const MAX_CACHED_TOKEN_BYTES = 32 * 1024 * 1024;

export interface TokenCacheOptions {
  /** The upstream's client: token realms are reached like its redirect targets. */
  readonly http: Pick<UpstreamHttp, 'send'>;
  readonly timeouts: Timeouts;
  /** Before asking a realm: throws if the mirror may not go there (target-policy.ts). */
  readonly checkRealm?: (url: URL) => Promise<void>;
  /** The mirror's Via, so a realm that leads back to the mirror is answered 508 there (loop.ts). */
  readonly via?: string;
  readonly userAgent?: string;
  readonly onFetch?: (result: 'ok' | 'error') => void;
}

export class TokenCache {
  readonly #tokens = new LRUCache<string, CachedToken>({ maxSize: MAX_CACHED_TOKEN_BYTES, sizeCalculation: (t) => Math.max(1, t.token.length) });
  readonly #pending = new Map<string, Promise<string>>();
  readonly #options: TokenCacheOptions;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
  }

  /** A cached, unexpired token for the challenge's realm/service and this scope. */
  cached(challenge: Challenge, scope: string): string | undefined {
    const hit = this.#tokens.get(cacheKey(challenge, scope));
    return hit && hit.expiresAt > Date.now() ? hit.token : undefined;
  }

  /**
   * Fetches a token (one request per realm/service/scope at a time), replacing any cached one; `timeouts`
   * are the caller's (bounded by its deadline). `credentials` go only where the caller trusts the realm.
   */
  fetch(challenge: Challenge, scope: string, credentials: Credentials | undefined, timeouts: Timeouts = this.#options.timeouts): Promise<string> {
    const key = cacheKey(challenge, scope);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#request(challenge, scope, credentials, timeouts).then(
        (token) => {
          this.#options.onFetch?.('ok');
          return token;
        },
        (err: unknown) => {
          this.#options.onFetch?.('error');
          throw err;
        },
      );
      pending = pending.finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #request(challenge: Challenge, scope: string, credentials: Credentials | undefined, timeouts: Timeouts): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm || !/^https?:\/\//i.test(realm) || !URL.canParse(realm)) throw new TokenAuthError('upstream sent a Bearer challenge without an http(s) realm', 502);
    const url = new URL(realm);
    await this.#options.checkRealm?.(url);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#options.userAgent ?? 'ocimirror' };
    if (this.#options.via) headers.via = this.#options.via;
    if (credentials?.kind === 'basic') {
      headers.authorization = basicAuthorization(credentials.username, credentials.password.reveal());
    }
    const res = await this.#options.http.send(url, { method: 'GET', headers, timeouts, deadline: Date.now() + timeouts.responseMs });
    if (res.status !== 200) {
      discard(res.body);
      throw new TokenAuthError(`token server ${url.host} answered ${res.status}`, res.status);
    }
    const declared = Number(res.headers['content-length']);
    const tooLarge = () => new TokenAuthError(`token server ${url.host} sent an answer larger than ${MAX_TOKEN_BODY} bytes`, 502);
    if (declared > MAX_TOKEN_BODY) {
      res.body.destroy();
      throw tooLarge();
    }
    const text = (await readLimited(res.body, MAX_TOKEN_BODY, tooLarge)).toString('utf8');
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new TokenAuthError(`token server ${url.host} sent invalid JSON`, 502);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new TokenAuthError(`token server ${url.host} sent no token`, 502);
    const lifetimeS = Math.max(MIN_LIFETIME_S, typeof body.expires_in === 'number' ? body.expires_in : 0);
    this.#tokens.set(cacheKey(challenge, scope), { token, expiresAt: Date.now() + lifetimeS * 1000 - RENEW_EARLY_MS });
    return token;
  }
}

function cacheKey(challenge: Challenge, scope: string): string {
  return `${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${scope}`;
}
