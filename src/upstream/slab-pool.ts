// Reusable read buffers for bulk bodies (bulk-get.ts). A socket read into fresh memory page-faults on
// every 4 KiB and copies into cold cache lines: measured on a cold pull (perf), receiving into new 1 MiB
// buffers spent as much time in page faults as in the copy itself. Slabs come back here once every
// view cut from them was released by the body's consumer; a slab whose views are never released is
// simply garbage collected.
interface SlabState {
  readonly slab: Buffer;
  /** Views handed out and not released yet. */
  out: number;
  /** No more views will be cut from it. */
  retired: boolean;
}

export class SlabPool {
  readonly slabSize: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];
  readonly #states = new WeakMap<ArrayBufferLike, SlabState>();

  /** `keep`: free slabs held at most (the rest are left to the garbage collector). */
  constructor(slabSize: number, keep: number) {
    this.slabSize = slabSize;
    this.#keep = keep;
  }

  take(): Buffer {
    const slab = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.slabSize);
    this.#states.set(slab.buffer, { slab, out: 0, retired: false });
    return slab;
  }

  /** Counts `view` (on a slab taken here) as handed to a consumer, who will release() it. */
  lend(view: Uint8Array): void {
    const state = this.#states.get(view.buffer);
    if (state) state.out++;
  }

  /** No more views will be cut from `slab`: it goes back once every lent view was released. */
  retire(slab: Buffer): void {
    const state = this.#states.get(slab.buffer);
    if (!state) return;
    state.retired = true;
    this.#recycle(state);
  }

  /** The consumer is done with `view` (lent by this pool; anything else is ignored). Once per view. */
  release(view: Uint8Array): void {
    const state = this.#states.get(view.buffer);
    if (!state || state.out === 0) return;
    state.out--;
    this.#recycle(state);
  }

  #recycle(state: SlabState): void {
    if (!state.retired || state.out > 0) return;
    this.#states.delete(state.slab.buffer);
    if (this.#free.length < this.#keep) this.#free.push(state.slab);
  }
}
