// Remembers for a short while that the upstream answered 404, so a client retrying a missing tag or blob
// in a loop does not hammer the upstream (and Docker Hub's pull limit).
import { LRUCache } from 'lru-cache';
import { OciError } from '../oci/errors.ts';

export class NegativeCache {
  readonly #misses: LRUCache<string, OciError> | undefined;

  constructor(ttlMs: number, max = 10_000) {
    this.#misses = ttlMs > 0 ? new LRUCache<string, OciError>({ max, ttl: ttlMs }) : undefined;
  }

  /** The remembered 404 for this key, if it is still fresh. */
  get(key: string): OciError | undefined {
    return this.#misses?.get(key);
  }

  /** Remembers `err` when it is a 404 from upstream. */
  remember(key: string, err: unknown): void {
    if (err instanceof OciError && err.status === 404) this.#misses?.set(key, err);
  }
}
