// Runs garbage collection one at a time across the replicas sharing the store (a lock file in the shared
// data dir, or a Redis lease where the replicas share only a bucket), on a schedule, from `ocimirror gc`
// and from the admin API.
import { collectGarbage, type GcDeps, type GcOptions, type GcReport } from './collect.ts';

/** Another process (or this one) is collecting now. */
export class GcBusyError extends Error {
  override readonly name = 'GcBusyError';
  constructor() {
    super('garbage collection is already running (in this process or another replica sharing the store)');
  }
}

/** The run lock across replicas: resolves with its release, or undefined when another replica holds it. */
export type GcLock = () => Promise<{ release(): Promise<void> } | undefined>;

export class GarbageCollector {
  readonly #deps: GcDeps;
  readonly #lock: GcLock;
  readonly #defaults: Omit<GcOptions, 'dryRun'>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(deps: GcDeps, options: { lock: GcLock; graceMs: number; deleteUntagged: boolean }) {
    this.#deps = deps;
    this.#lock = options.lock;
    this.#defaults = { graceMs: options.graceMs, deleteUntagged: options.deleteUntagged };
  }

  /** Runs now; GcBusyError when a run is under way here or on another replica. */
  async run(options: Partial<GcOptions> = {}): Promise<GcReport> {
    if (this.#running) throw this.#busy();
    const lock = await this.#lock();
    if (!lock) throw this.#busy();
    const work = collectGarbage(this.#deps, { ...this.#defaults, dryRun: false, ...options });
    this.#running = work;
    try {
      return await work;
    } catch (err) {
      this.#deps.metrics.gcRuns.inc({ result: 'failed' });
      throw err;
    } finally {
      this.#running = undefined;
      await lock.release();
    }
  }

  /** Runs every `intervalMs` (0: never). */
  schedule(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.run().catch((err: unknown) => {
        if (!(err instanceof GcBusyError)) this.#deps.logger.warn({ err }, 'scheduled garbage collection failed');
      });
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the schedule and waits for a run in progress. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  #busy(): GcBusyError {
    this.#deps.metrics.gcRuns.inc({ result: 'busy' });
    return new GcBusyError();
  }
}
