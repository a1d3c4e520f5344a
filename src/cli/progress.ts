// Progress of `ocimirror warm` on stderr: a bar per image redrawn in place on a terminal, plain log lines
// otherwise (CI logs, pipes).
import type { WarmProgress } from '../warm/warm-image.ts';
import { formatBytes } from './format.ts';

/** A terminal's or a log's view of one image being warmed. */
export type ImageProgress = WarmProgress;

export interface Progress {
  image(name: string): ImageProgress;
}

export function createProgress(stream: NodeJS.WriteStream): Progress {
  return stream.isTTY ? new TerminalProgress(stream) : new LineProgress(stream);
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

class TerminalProgress implements Progress {
  readonly #out: NodeJS.WriteStream;
  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
  }

  image(name: string): ImageProgress {
    const out = this.#out;
    let total = 0;
    let blobs = 0;
    let done = 0;
    let blobsDone = 0;
    let drawn = 0;
    const draw = (force = false) => {
      const now = Date.now();
      if (!force && now - drawn < REDRAW_MS) return;
      drawn = now;
      const fraction = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(BAR_WIDTH - filled)}]`;
      const text = `${name} ${bar} ${formatBytes(done)} / ${formatBytes(total)}  ${blobsDone}/${blobs} blobs`;
      out.write(`\r\x1b[K${fit(text, out.columns)}`);
    };
    out.write(`\r\x1b[K${fit(`${name} resolving...`, out.columns)}`);
    return {
      start: (bytes, count) => {
        total = bytes;
        blobs = count;
        draw(true);
      },
      bytes: (count) => {
        done += count;
        draw();
      },
      blobDone: () => {
        blobsDone++;
        draw();
      },
      finish: (line) => out.write(`\r\x1b[K${line}\n`),
    };
  }
}

class LineProgress implements Progress {
  readonly #out: NodeJS.WriteStream;
  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
  }

  image(name: string): ImageProgress {
    this.#out.write(`${name}: resolving\n`);
    return {
      start: (bytes, count) => this.#out.write(`${name}: fetching ${count} blobs, ${formatBytes(bytes)}\n`),
      bytes: () => {},
      blobDone: () => {},
      finish: (line) => this.#out.write(`${line}\n`),
    };
  }
}

function fit(text: string, columns: number | undefined): string {
  const width = (columns || 80) - 1; // a pseudo-terminal may report 0 columns
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}
