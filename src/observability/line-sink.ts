// Where the root logger's JSON lines go (stdout): the lines of one event-loop turn leave together in
// one write(2) at the end of the turn, and at most MAX_PENDING_BYTES wait in memory. A reader that
// falls behind (journald, a container log driver, a pipe) makes the mirror wait for it, as a program
// writing its log with blocking writes does, instead of buffering without bound: under 30k+ requests
// per second the asynchronous writer pino uses by default kept megabytes of lines waiting, which V8
// promoted to the old generation (peak RSS +20-40 MB). No line is dropped and the order is kept.
// The lines are encoded into one buffer the sink keeps: a Buffer.from per turn is cut from Node's
// shared 8 KiB pool slabs, which live through several young collections while they fill, reach the old
// generation and wait there for a full one (+16 MB of dead slabs under 48k logged requests/s).
import { writeSync } from 'node:fs';

/** Lines kept before they are written at once, within the turn. */
const MAX_PENDING_BYTES = 256 * 1024;
/** The kept encoding buffer; a turn whose lines need more gets a buffer of its own. */
const OUT_BYTES = 64 * 1024;
/** How long to wait when a non-blocking descriptor is full. */
const FULL_WAIT_MS = 1;

export class LineSink {
  readonly #fd: number;
  #pending: string[] = [];
  /** Length of the waiting lines (UTF-16 units: bytes, for the ASCII JSON lines the logger writes). */
  #length = 0;
  #scheduled = false;
  #exitHooked = false;
  #broken = false;
  readonly #flushNow = () => this.flushSync();
  readonly #wait = new Int32Array(new SharedArrayBuffer(4));
  #out: Buffer | undefined;

  constructor(fd = 1) {
    this.#fd = fd;
  }

  write(line: string): boolean {
    if (this.#broken) return true;
    this.#pending.push(line);
    this.#length += line.length;
    if (!this.#exitHooked) {
      // Lines still waiting when the process exits (process.exit() included) are written then. Hooked
      // once, at the first line: a logger that never writes (level silent) adds no listener.
      this.#exitHooked = true;
      process.on('exit', this.#flushNow);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushNow);
    }
    if (this.#length >= MAX_PENDING_BYTES) this.flushSync();
    return true;
  }

  /** pino's logger.flush(). */
  flush(done?: (err?: Error) => void): void {
    this.flushSync();
    done?.();
  }

  /** Writes every waiting line now, waiting for the reader if it must. */
  flushSync(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? this.#pending[0]! : this.#pending.join('');
    this.#pending = [];
    this.#length = 0;
    const bytes = Buffer.byteLength(text);
    // Allocated at the first flush: a logger that never writes keeps no buffer.
    const data = bytes <= OUT_BYTES ? (this.#out ??= Buffer.allocUnsafeSlow(OUT_BYTES)) : Buffer.allocUnsafeSlow(bytes);
    data.write(text, 0, bytes);
    let written = 0;
    while (written < bytes && !this.#broken) {
      try {
        written += writeSync(this.#fd, data, written, bytes - written);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') Atomics.wait(this.#wait, 0, 0, FULL_WAIT_MS);
        // The reader is gone (EPIPE) or the descriptor unusable: nothing can be logged any more, and
        // a registry does not stop serving for it.
        else this.#broken = true;
      }
    }
  }
}
