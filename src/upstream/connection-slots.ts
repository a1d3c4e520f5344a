// A cap on the connections one upstream's client has open at once (upstreams[].maxConnections): 2,000
// cold pulls must not open 2,000 sockets to the registry. Every request takes a slot (blob downloads
// from one set, everything else from another) for as long as its body is open (http-client.ts), so
// the connection pools never queue a request that has a deadline to keep.
import { TimeoutError } from './errors.ts';

export class ConnectionSlots {
  readonly size: number;
  #used = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.size = size;
  }

  get used(): number {
    return this.#used;
  }

  /** Resolves with the slot's release function once one is free; rejects if none is by `deadline` (epoch ms). */
  acquire(deadline: number, what: string): Promise<() => void> {
    if (this.#used < this.size) {
      this.#used++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        this.#used++;
        resolve(this.#releaser());
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(grant), 1);
        reject(new TimeoutError(`all ${this.size} connections to ${what} stayed busy until the deadline`));
      }, Math.max(0, deadline - Date.now()));
      this.#waiting.push(grant);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used--;
      this.#waiting.shift()?.();
    };
  }
}
