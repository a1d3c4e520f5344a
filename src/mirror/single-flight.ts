// At most one execution per key at a time; callers arriving meanwhile share its result.
export class SingleFlight<T> {
  readonly #running = new Map<string, Promise<T>>();

  /** Runs `work` unless a run for `key` is in progress; `joined` tells the caller which happened. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const running = this.#running.get(key);
    if (running) return { promise: running, joined: true };
    const promise = work().finally(() => this.#running.delete(key));
    this.#running.set(key, promise);
    return { promise, joined: false };
  }

  get size(): number {
    return this.#running.size;
  }
}
