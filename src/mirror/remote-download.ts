// Following a download that another mirror process (sharing the data dir and Redis) is making: its
// upload file is read as it grows; the blob appearing in the store means the digest was verified;
// the lease disappearing without that means the other process failed.
import type { PartialBlob } from '../store/blob-store.ts';
import { InflightBlob } from './inflight-blob.ts';

export interface RemoteDownloadOptions {
  readonly digest: string;
  readonly size: number | undefined;
  readonly partial: PartialBlob;
  /** The stored blob's size once the other process committed it. */
  readonly storedSize: () => Promise<number | undefined>;
  /** Whether the other process still holds the download lease. */
  readonly leaseHeld: () => Promise<boolean>;
  readonly pollMs?: number;
}

export class RemoteDownload extends InflightBlob {
  readonly finished: Promise<void>;
  readonly #o: RemoteDownloadOptions;
  #written = 0;

  constructor(options: RemoteDownloadOptions) {
    super(options.digest, options.size);
    this.#o = options;
    this.finished = this.#watch();
  }

  get written(): number {
    return this.#written;
  }

  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    return this.#o.partial.readInto(target, targetOffset, position, Math.max(0, Math.min(length, this.#written - position)));
  }

  protected closeSource(): void {
    void this.#o.partial.close();
  }

  async #watch(): Promise<void> {
    const pollMs = this.#o.pollMs ?? 50;
    try {
      for (;;) {
        const stored = await this.#o.storedSize();
        if (stored !== undefined) {
          this.#written = stored;
          this.settle('committed');
          return;
        }
        const written = await this.#o.partial.size();
        if (written !== this.#written) {
          this.#written = written;
          this.progress();
        } else if (!(await this.#o.leaseHeld()) && (await this.#o.storedSize()) === undefined) {
          throw new Error('the mirror process downloading this blob gave up');
        } else {
          await new Promise((resolve) => setTimeout(resolve, pollMs));
        }
      }
    } catch (err) {
      this.settle('failed', err as Error);
    }
  }
}
