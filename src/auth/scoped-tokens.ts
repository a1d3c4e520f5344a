// Scoped, expiring access tokens (as Azure Container Registry's repository-scoped tokens): a name, repository
// globs, actions and an expiry; the secret is shown once and stored only as a SHA-256 hash (it is 256
// random bits, so a slow hash adds nothing). One file per token under <dataDir>/auth/tokens/, so that
// `ocimirror token create|rm` take effect at once in a running `serve` (and in every replica sharing the
// data dir): each use stats the file again (its parsed record is reused while the file is unchanged), so a
// removed token is refused on its very next use.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthAction } from '../config/config.ts';

export interface ScopedToken {
  readonly name: string;
  readonly repos: readonly string[];
  readonly actions: readonly AuthAction[];
  readonly createdAt: number;
  /** ms since epoch. */
  readonly expiresAt: number;
}

export interface ScopedTokenInfo extends ScopedToken {
  /** When it last authenticated a request (ms since epoch), if ever. */
  readonly lastUsedAt?: number;
}

export class TokenNameError extends Error {
  override readonly name = 'TokenNameError';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Secrets look like `ocm_<43 base64url characters>`, so a leaked one is recognisable. */
const SECRET_PREFIX = 'ocm_';
/** Last use is written at most this often per token. */
const USE_RECORD_MS = 60_000;

interface Stored extends ScopedToken {
  readonly secretSha256: string;
}

export class ScopedTokens {
  readonly #dir: string;
  readonly #now: () => number;
  /** Parsed records by name, with the file identity (inode, mtime, size) they were read from. */
  readonly #lookups = new Map<string, { stamp: string; record: Stored | undefined }>();
  readonly #usedAt = new Map<string, number>();

  constructor(dataDir: string, now: () => number = Date.now) {
    this.#dir = join(dataDir, 'auth', 'tokens');
    this.#now = now;
  }

  /** Creates the token; resolves with its secret, which is stored nowhere. */
  async create(token: Omit<ScopedToken, 'createdAt'>): Promise<string> {
    this.#checkName(token.name);
    const secret = `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record: Stored = { ...token, createdAt: this.#now(), secretSha256: sha256(secret) };
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const temp = join(this.#dir, `.${token.name}.${randomBytes(4).toString('hex')}`);
    await writeFile(temp, JSON.stringify(record), { mode: 0o600, flag: 'wx' });
    try {
      // link-free exclusivity: refuse to replace a token of the same name.
      if (await stat(this.#file(token.name)).then(() => true, () => false)) throw new TokenNameError(`a token named "${token.name}" exists; remove it first (ocimirror token rm ${token.name})`);
      await rename(temp, this.#file(token.name));
    } finally {
      await rm(temp, { force: true });
    }
    return secret;
  }

  async remove(name: string): Promise<boolean> {
    this.#checkName(name);
    const existed = await stat(this.#file(name)).then(() => true, () => false);
    await rm(this.#file(name), { force: true });
    await rm(this.#usedFile(name), { force: true });
    this.#lookups.delete(name);
    return existed;
  }

  async list(): Promise<ScopedTokenInfo[]> {
    const names = (await readdir(this.#dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -5));
    const tokens = await Promise.all(
      names.map(async (name) => {
        const record = await this.#read(name);
        if (!record) return undefined;
        const used = await stat(this.#usedFile(name)).catch(() => undefined);
        const { secretSha256: _, ...info } = record;
        return { ...info, ...(used ? { lastUsedAt: used.mtimeMs } : {}) };
      }),
    );
    return tokens.filter((t) => t !== undefined).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** The token if `secret` is its secret and it has not expired; records the use. */
  async verify(name: string, secret: string): Promise<ScopedToken | undefined> {
    if (!NAME.test(name) || !secret.startsWith(SECRET_PREFIX)) return undefined;
    const record = await this.lookup(name);
    if (!record || record.expiresAt <= this.#now()) return undefined;
    const given = Buffer.from(sha256(secret), 'hex');
    const stored = Buffer.from(record.secretSha256, 'hex');
    if (given.length !== stored.length || !timingSafeEqual(given, stored)) return undefined;
    this.#recordUse(name);
    const { secretSha256: _, ...token } = record;
    return token;
  }

  /** The token's record while it exists and has not expired (for tokens issued from it: revocation bites at once). */
  async lookup(name: string): Promise<Stored | undefined> {
    if (!NAME.test(name)) return undefined;
    const now = this.#now();
    const info = await stat(this.#file(name)).catch(() => undefined);
    if (!info) {
      this.#lookups.delete(name);
      return undefined;
    }
    const stamp = `${info.ino}:${info.mtimeMs}:${info.size}`;
    let cached = this.#lookups.get(name);
    if (cached?.stamp !== stamp) {
      cached = { stamp, record: await this.#read(name) };
      if (this.#lookups.size >= 10_000) this.#lookups.clear();
      this.#lookups.set(name, cached);
    }
    return cached.record && cached.record.expiresAt > now ? cached.record : undefined;
  }

  #recordUse(name: string): void {
    const now = this.#now();
    if (now - (this.#usedAt.get(name) ?? 0) < USE_RECORD_MS) return;
    this.#usedAt.set(name, now);
    const path = this.#usedFile(name);
    const at = new Date(now);
    void utimes(path, at, at).catch(() => writeFile(path, '', { mode: 0o600 }).catch(() => {}));
  }

  async #read(name: string): Promise<Stored | undefined> {
    if (!NAME.test(name)) return undefined;
    const text = await readFile(this.#file(name), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as Stored;
    } catch {
      return undefined;
    }
  }

  #checkName(name: string): void {
    if (!NAME.test(name)) throw new TokenNameError(`"${name.slice(0, 80)}" is not a token name: letters, digits, . _ - (up to 64, starting with a letter or digit)`);
  }

  #file(name: string): string {
    return join(this.#dir, `${name}.json`);
  }

  #usedFile(name: string): string {
    return join(this.#dir, `${name}.used`);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
