// Failed logins, counted per client address and per user over a sliding minute: past the limit, further
// attempts get 429 with Retry-After before any password is checked. The per-user limit is the higher
// one, so an attacker on one address cannot lock a user out of every other address.
import { LRUCache } from 'lru-cache';

const WINDOW_MS = 60_000;

export class LoginLimiter {
  readonly #perAddress: number;
  readonly #perUser: number;
  readonly #now: () => number;
  // A count bound given as a size (1 per entry): with `max`, lru-cache allocates every slot up front.
  readonly #failures = new LRUCache<string, number[]>({ maxSize: 50_000, sizeCalculation: () => 1 });

  constructor(options: { perAddress: number; perUser: number; now?: () => number }) {
    this.#perAddress = options.perAddress;
    this.#perUser = options.perUser;
    this.#now = options.now ?? Date.now;
  }

  /** Seconds to wait before trying again, or 0 when an attempt may be made now. */
  retryAfter(address: string, user: string | undefined): number {
    const wait = Math.max(this.#wait(`a:${address}`, this.#perAddress), user === undefined ? 0 : this.#wait(`u:${user}`, this.#perUser));
    return Math.ceil(wait / 1000);
  }

  failed(address: string, user: string | undefined): void {
    this.#record(`a:${address}`);
    if (user !== undefined) this.#record(`u:${user}`);
  }

  #record(key: string): void {
    const now = this.#now();
    const recent = (this.#failures.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
    recent.push(now);
    this.#failures.set(key, recent.slice(-1000));
  }

  #wait(key: string, limit: number): number {
    const now = this.#now();
    const recent = (this.#failures.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
    if (recent.length < limit) return 0;
    return WINDOW_MS - (now - recent[recent.length - limit]!);
  }
}
