// The registry token flow's tokens: short-lived JWTs (ES256, via the `jose` library) whose `access`
// claim lists what was granted. The signing keys live in <dataDir>/auth/keys/, one file per key; the
// newest signs. `ocimirror token rotate-key` adds a key: tokens signed by the one it replaces stay
// valid for their remaining lifetime (the previous key is accepted for `ttl` plus a minute after it was
// replaced), so a rotation never cuts live sessions off abruptly. Only ES256 is accepted: `alg: none`
// and every other algorithm are refused before any key is looked at.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import type { AuthAction } from '../config/config.ts';

export interface Access {
  readonly type: 'repository';
  readonly name: string;
  readonly actions: readonly AuthAction[];
}

/** Who a token was issued to: a user, a scoped token, or nobody (anonymous). */
export type Subject =
  | { readonly kind: 'user'; readonly name: string }
  /** `createdAt` tells a token from a later one of the same name: revoking and re-creating does not revive old JWTs. */
  | { readonly kind: 'token'; readonly name: string; readonly createdAt: number }
  | { readonly kind: 'anonymous' };

export interface VerifiedToken {
  readonly subject: Subject;
  readonly access: readonly Access[];
  readonly expiresAt: number;
}

interface StoredKey {
  readonly kid: string;
  readonly createdAt: number;
  readonly privateJwk: JWK;
}

interface LoadedKey {
  readonly kid: string;
  readonly createdAt: number;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

const ALG = 'ES256';
const ISSUER = 'ocimirror';
/** How often the keys directory is looked at for a rotation done by another process. */
const RELOAD_MS = 2_000;

export class TokenService {
  readonly #dir: string;
  readonly #service: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #keys: LoadedKey[] = [];
  #dirMtime = -1;
  #checkedAt = 0;
  // A count bound given as a size (1 per entry): with `max`, lru-cache allocates every slot up front.
  readonly #verified = new LRUCache<string, VerifiedToken>({ maxSize: 10_000, sizeCalculation: () => 1 });

  private constructor(dataDir: string, service: string, ttlMs: number, now: () => number) {
    this.#dir = join(dataDir, 'auth', 'keys');
    this.#service = service;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Loads the keys, generating the first one when there is none. */
  static async open(options: { dataDir: string; service: string; ttlMs: number; now?: () => number }): Promise<TokenService> {
    const service = new TokenService(options.dataDir, options.service, options.ttlMs, options.now ?? Date.now);
    await service.#reload(true);
    if (service.#keys.length === 0) {
      await service.rotate();
      await service.#reload(true);
    }
    return service;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Adds a new signing key (the previous ones keep verifying for their grace time). */
  async rotate(): Promise<string> {
    const { privateKey } = await generateKeyPair(ALG, { extractable: true });
    const stored: StoredKey = { kid: randomBytes(8).toString('hex'), createdAt: this.#now(), privateJwk: await exportJWK(privateKey) };
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const temp = join(this.#dir, `.${stored.kid}.tmp`);
    await writeFile(temp, JSON.stringify(stored), { mode: 0o600 });
    await rename(temp, join(this.#dir, `${stored.kid}.json`));
    this.#checkedAt = 0;
    return stored.kid;
  }

  async issue(subject: Subject, access: readonly Access[]): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
    await this.#maybeReload();
    const key = this.#keys[0];
    if (!key) throw new Error('no signing key');
    const now = this.#now();
    const token = await new SignJWT({ access, sub_kind: subject.kind, ...(subject.kind === 'token' ? { sub_created: subject.createdAt } : {}) })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(subject.kind === 'anonymous' ? '' : subject.name)
      .setAudience(this.#service)
      .setIssuedAt(Math.floor(now / 1000))
      .setNotBefore(Math.floor(now / 1000) - 5)
      .setExpirationTime(Math.floor((now + this.#ttlMs) / 1000))
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { token, expiresIn: Math.floor(this.#ttlMs / 1000), issuedAt: new Date(now).toISOString() };
  }

  /** The token's subject and grants, or undefined for anything forged, expired, foreign or signed by a retired key. */
  async verify(token: string): Promise<VerifiedToken | undefined> {
    const cached = this.#verified.get(token);
    if (cached) return cached.expiresAt > this.#now() ? cached : undefined;
    await this.#maybeReload();
    try {
      const { payload } = await jwtVerify(token, async (header) => this.#verificationKey(header.kid), {
        algorithms: [ALG],
        issuer: ISSUER,
        audience: this.#service,
        currentDate: new Date(this.#now()),
      });
      const verified = toVerified(payload);
      if (verified) this.#verified.set(token, verified);
      return verified;
    } catch {
      return undefined;
    }
  }

  #verificationKey(kid: string | undefined): CryptoKey {
    const index = this.#keys.findIndex((k) => k.kid === kid);
    const key = this.#keys[index];
    if (!key) throw new Error('unknown key');
    // Replaced at the creation time of the next newer key; accepted for a token lifetime (+1 min) after that.
    const replacedAt = index === 0 ? Infinity : this.#keys[index - 1]!.createdAt;
    if (this.#now() > replacedAt + this.#ttlMs + 60_000) throw new Error('retired key');
    return key.publicKey;
  }

  async #maybeReload(): Promise<void> {
    if (this.#now() - this.#checkedAt < RELOAD_MS) return;
    await this.#reload(false);
  }

  async #reload(force: boolean): Promise<void> {
    this.#checkedAt = this.#now();
    const mtime = (await stat(this.#dir).catch(() => undefined))?.mtimeMs ?? -1;
    if (!force && mtime === this.#dirMtime) return;
    const keys: LoadedKey[] = [];
    for (const name of await readdir(this.#dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      try {
        const stored = JSON.parse(await readFile(join(this.#dir, name), 'utf8')) as StoredKey;
        const privateKey = (await importJWK(stored.privateJwk, ALG)) as CryptoKey;
        const { d: _, ...publicJwk } = stored.privateJwk;
        const publicKey = (await importJWK(publicJwk, ALG)) as CryptoKey;
        keys.push({ kid: stored.kid, createdAt: stored.createdAt, privateKey, publicKey });
      } catch {
        // A key file being written or damaged: skip it.
      }
    }
    this.#keys = keys.sort((a, b) => b.createdAt - a.createdAt);
    this.#dirMtime = mtime;
  }
}

function toVerified(payload: JWTPayload): VerifiedToken | undefined {
  const access = payload.access;
  const kind = payload.sub_kind;
  if (!Array.isArray(access) || typeof payload.exp !== 'number') return undefined;
  const name = typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
  const subject: Subject | undefined =
    kind === 'anonymous'
      ? { kind }
      : kind === 'user' && name
        ? { kind, name }
        : kind === 'token' && name && typeof payload.sub_created === 'number'
          ? { kind, name, createdAt: payload.sub_created }
          : undefined;
  if (!subject) return undefined;
  const grants = access.filter(
    (a): a is Access => !!a && a.type === 'repository' && typeof a.name === 'string' && Array.isArray(a.actions) && a.actions.every((x: unknown) => x === 'pull' || x === 'push' || x === 'delete'),
  );
  return { subject, access: grants, expiresAt: payload.exp * 1000 };
}
