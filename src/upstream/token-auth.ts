// Docker's token flow (distribution "Token Authentication Specification"): on a Bearer challenge, ask the
// realm for a token for service+scope (anonymously or with Basic credentials), and reuse it until it expires.
import type { Agent } from 'node:http';
import type { Credentials } from '../config/config.ts';
import type { Challenge } from './challenge.ts';
import { drain, sendRequest, type Timeouts } from './http-request.ts';

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

export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<string>>();
  readonly #agentFor: (url: URL) => Agent;
  readonly #timeouts: Timeouts;
  readonly #onFetch: (result: 'ok' | 'error') => void;

  constructor(options: { agentFor: (url: URL) => Agent; timeouts: Timeouts; onFetch?: (result: 'ok' | 'error') => void }) {
    this.#agentFor = options.agentFor;
    this.#timeouts = options.timeouts;
    this.#onFetch = options.onFetch ?? (() => {});
  }

  /** A cached, unexpired token for the challenge's realm/service and this scope. */
  cached(challenge: Challenge, scope: string): string | undefined {
    const hit = this.#tokens.get(cacheKey(challenge, scope));
    return hit && hit.expiresAt > Date.now() ? hit.token : undefined;
  }

  /** Fetches a token (one request per realm/service/scope at a time), replacing any cached one. */
  fetch(challenge: Challenge, scope: string, credentials: Credentials | undefined): Promise<string> {
    const key = cacheKey(challenge, scope);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#request(challenge, scope, credentials).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #request(challenge: Challenge, scope: string, credentials: Credentials | undefined): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm || !/^https?:\/\//i.test(realm)) throw new TokenAuthError('upstream sent a Bearer challenge without an http(s) realm', 502);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'ocimirror' };
    if (credentials?.kind === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password.reveal()}`).toString('base64')}`;
    }
    let res;
    try {
      res = await sendRequest(url, { method: 'GET', headers, agent: this.#agentFor(url), timeouts: this.#timeouts });
    } catch (err) {
      this.#onFetch('error');
      throw err;
    }
    if (res.statusCode !== 200) {
      drain(res);
      this.#onFetch('error');
      throw new TokenAuthError(`token server ${url.host} answered ${res.statusCode}`, res.statusCode ?? 502);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      this.#onFetch('error');
      throw new TokenAuthError(`token server ${url.host} sent invalid JSON`, 502);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) {
      this.#onFetch('error');
      throw new TokenAuthError(`token server ${url.host} sent no token`, 502);
    }
    const lifetimeS = Math.max(MIN_LIFETIME_S, typeof body.expires_in === 'number' ? body.expires_in : 0);
    this.#tokens.set(cacheKey(challenge, scope), { token, expiresAt: Date.now() + lifetimeS * 1000 - RENEW_EARLY_MS });
    this.#onFetch('ok');
    return token;
  }
}

function cacheKey(challenge: Challenge, scope: string): string {
  return `${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${scope}`;
}
