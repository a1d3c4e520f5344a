// Removals of cached content run one at a time, whoever asks (the admin API, the web UI): each computes
// what the other cached images keep, which a removal running beside it would change under it.
export class RemovalQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work);
    this.#tail = run.catch(() => {});
    return run;
  }
}
