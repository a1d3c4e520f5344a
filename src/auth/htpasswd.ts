// Users from an htpasswd file as `htpasswd -B` writes it: `name:$2y$...` (bcrypt). Other hash kinds
// (MD5 "$apr1$", SHA "{SHA}", crypt) are refused when the file is read: they are too cheap to brute-force.
// The file is re-read when it changes, so adding a user needs no restart.
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';

export class HtpasswdError extends Error {
  override readonly name = 'HtpasswdError';
}

/** Compared against when the user is unknown, so that an unknown name costs what a wrong password does. */
const DUMMY_HASH = '$2b$05$FYMLw0iN/waIA7DqEtC7o.l/mkpseKVVKcx6cCni/IOqjOWdYdEcS';
/** How often the file's mtime is looked at. */
const RECHECK_MS = 1_000;

export class HtpasswdUsers {
  readonly #path: string;
  #users = new Map<string, string>();
  #mtimeMs = -1;
  #checkedAt = 0;

  /** Reads the file now: a missing file or a non-bcrypt line is an HtpasswdError (a start-up error). */
  constructor(path: string) {
    this.#path = path;
    this.#reload();
  }

  has(user: string): boolean {
    this.#maybeReload();
    return this.#users.has(user);
  }

  /** Whether the password is the user's (bcrypt, off the event loop in small steps). */
  async verify(user: string, password: string): Promise<boolean> {
    this.#maybeReload();
    const hash = this.#users.get(user);
    // bcryptjs reads $2y$ as $2b$ (the same algorithm under PHP's name).
    const ok = await bcrypt.compare(password, (hash ?? DUMMY_HASH).replace(/^\$2y\$/, '$2b$'));
    return ok && hash !== undefined;
  }

  #maybeReload(): void {
    const now = Date.now();
    if (now - this.#checkedAt < RECHECK_MS) return;
    this.#checkedAt = now;
    try {
      this.#reload();
    } catch {
      // A file being rewritten, or broken by hand: keep the users we have until it reads cleanly.
    }
  }

  #reload(): void {
    let mtimeMs: number;
    let text: string;
    try {
      mtimeMs = statSync(this.#path).mtimeMs;
      if (mtimeMs === this.#mtimeMs) return;
      text = readFileSync(this.#path, 'utf8');
    } catch (err) {
      throw new HtpasswdError(`cannot read the htpasswd file ${this.#path}: ${(err as Error).message}`);
    }
    const users = new Map<string, string>();
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0 || !/^\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw new HtpasswdError(
          `${this.#path} line ${i + 1}: only bcrypt entries are accepted (create them with \`htpasswd -B\`); ${colon <= 0 ? 'no "name:" found' : `user "${name}" has another hash kind`}`,
        );
      }
      users.set(name, hash);
    }
    this.#users = users;
    this.#mtimeMs = mtimeMs;
  }
}
