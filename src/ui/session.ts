// Browser sessions of the web UI: a random id in an HttpOnly, SameSite=Strict cookie (Secure on TLS),
// mapped in this process to who logged in and the session's CSRF token. Every visitor gets one, logged
// in or not, so that the login form itself carries a CSRF token. Sessions live in memory: a restart logs
// everyone out, which is what an operator restarting a mirror expects.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../auth/authorizer.ts';

export const SESSION_COOKIE = 'ocimirror_session';
const IDLE_MS = 8 * 60 * 60_000;
/** Beyond this many, the least recently used go (a flood of cookie-less requests cannot grow memory). */
const MAX_SESSIONS = 10_000;

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly principal: Principal;
  lastSeen: number;
}

export class UiSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The session of a cookie value, if it is live; touching it keeps it live. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    if (this.#now() - session.lastSeen > IDLE_MS) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.lastSeen = this.#now();
    // Re-inserted: the Map's order is then least recently used first.
    this.#sessions.delete(id);
    this.#sessions.set(id, session);
    return session;
  }

  /** A new session (login gets a new id: a session id known before login is worth nothing after). */
  create(principal: Principal): Session {
    const session: Session = { id: token(), csrf: token(), principal, lastSeen: this.#now() };
    this.#sessions.set(session.id, session);
    while (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    return session;
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }
}

export function csrfMatches(session: Session, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

function token(): string {
  return randomBytes(32).toString('base64url');
}
